"""The Kubernetes manifests render, match the API schemas, and fit together.

What is checked, offline:
- every kustomization under deploy/k8s renders with kustomize (files it names exist; a
  secret env file that git ignores has a committed `.example`);
- every object of a built-in kind is valid for Kubernetes 1.30 and 1.37
  (kubernetes-validate's bundled OpenAPI schemas, strict: unknown fields are errors);
- custom resources have no schema here (Strimzi's Kafka/KafkaNodePool, the Prometheus
  Operator's ServiceMonitor): each kind is listed in CUSTOM_RESOURCES and its fields are
  asserted explicitly below; an object of any other kind without a schema fails;
- the pieces agree: selectors, ports, probes, generated names, the topology in the
  ConfigMap, the settings names, the addresses of the example Kafka and ClickHouse.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline.settings import Settings
from pipeline.topology import load_topology
from tests.support.manifests import (
    K8S,
    Manifest,
    by_kind,
    copy_with_examples,
    kafka_version,
    load_documents,
    one,
    read_env_file,
    render,
)
from tests.support.paths import ROOT

#: The oldest Kubernetes the manifests claim, and the newest kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
#: Kinds without a bundled schema; test_custom_resources asserts their fields instead.
CUSTOM_RESOURCES = {
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
KUSTOMIZATIONS = (
    "base",
    "overlays/production",
    "examples/strimzi",
    "examples/clickhouse",
    "examples/prometheus-operator",
)
WORKER_LABELS = {"app.kubernetes.io/name": "cityops", "app.kubernetes.io/component": "worker"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    tree = copy_with_examples(K8S, tmp_path_factory.mktemp("k8s") / "k8s")
    return {name: render(tree / name) for name in KUSTOMIZATIONS}


@pytest.fixture(scope="module")
def base(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return rendered["base"]


def _worker(objects: list[Manifest]) -> Manifest:
    statefulset = one(objects, "StatefulSet")
    assert statefulset["metadata"]["name"] == "cityops-worker"
    return statefulset


def _container(statefulset: Manifest) -> Manifest:
    containers = statefulset["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def _named(objects: list[Manifest], kind: str, prefix: str) -> Manifest:
    """A generated object: its name is `prefix-<hash>`."""
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, f"expected one generated {kind} {prefix}-<hash>, found {found}"
    return found[0]


def _env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_every_kustomization_is_rendered() -> None:
    found = {str(path.parent.relative_to(K8S)) for path in K8S.rglob("kustomization.yaml")}
    assert found == set(KUSTOMIZATIONS)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_referenced_files_exist_and_secrets_are_not_committed(name: str) -> None:
    directory = K8S / name
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    paths = list(spec.get("resources", [])) + [p["path"] for p in spec.get("patches", [])]
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        paths += generator.get("files", []) + generator.get("envs", [])
    assert paths, f"{name} names no file"
    for relative in paths:
        path = directory / relative.split("=", 1)[-1]
        if path.exists():
            continue
        # Only a git-ignored secret may be missing, and then its example must be there.
        assert path.suffix == ".env", f"{name}: {relative} does not exist"
        assert path.with_name(path.name + ".example").is_file(), f"{relative}: no example"
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", str(path.relative_to(ROOT))],
            cwd=ROOT,
            check=False,
        )
        assert ignored.returncode == 0, f"{relative} holds secrets: git must ignore it"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_built_in_kinds_match_the_api_schemas(
    rendered: dict[str, list[Manifest]], name: str, version: str
) -> None:
    assert rendered[name], f"{name} renders nothing"
    for obj in rendered[name]:
        key = (obj["apiVersion"], obj["kind"])
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert key in CUSTOM_RESOURCES, f"{key} has no schema and no explicit checks"
            continue
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc}")
        assert key not in CUSTOM_RESOURCES, f"{key} is built in: drop it from the list"


def test_selectors_ports_and_probes_agree(base: list[Manifest]) -> None:
    statefulset = _worker(base)
    spec = statefulset["spec"]
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    service = one(base, "Service")
    budget = one(base, "PodDisruptionBudget")
    assert spec["selector"]["matchLabels"] == WORKER_LABELS
    assert labels.items() >= WORKER_LABELS.items()
    assert service["spec"]["selector"] == WORKER_LABELS
    assert budget["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    assert spec["serviceName"] == service["metadata"]["name"] == "cityops-worker"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # scrape unready workers too

    container = _container(statefulset)
    (port,) = container["ports"]
    env = _env(container)
    assert port["name"] == "http"
    assert str(port["containerPort"]) == env["CITYOPS_WEB_PORT"] == "6066"
    assert env["CITYOPS_WEB_HOST"] == "0.0.0.0"  # noqa: S104  # reachable by the probes
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "6066"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]


def test_one_consumer_group_and_a_stable_identity_per_worker(base: list[Manifest]) -> None:
    env = _env(_container(_worker(base)))
    settings = _named(base, "ConfigMap", "cityops-settings")["data"]
    assert settings["CITYOPS_WORKER_ID"] == "cityops"
    assert "CITYOPS_WORKER_ID" not in env  # never per pod: all workers share the group
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CONSUMER_GROUP_INSTANCE_ID"] == "$(POD_NAME)"
    assert env["CITYOPS_DATA_DIR"].endswith("/$(POD_NAME)")
    names = [item["name"] for item in _container(_worker(base))["env"]]
    assert names.index("POD_NAME") < names.index("CITYOPS_DATA_DIR")  # defined before use


def test_generated_names_are_referenced(base: list[Manifest]) -> None:
    pod = _worker(base)["spec"]["template"]["spec"]
    container = _container(_worker(base))
    topology = _named(base, "ConfigMap", "cityops-topology")["metadata"]["name"]
    settings = _named(base, "ConfigMap", "cityops-settings")["metadata"]["name"]
    secret = _named(base, "Secret", "cityops-clickhouse")["metadata"]["name"]
    assert {"configMapRef": {"name": settings}} in container["envFrom"]
    assert {"secretRef": {"name": secret}} in container["envFrom"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["topology"]["configMap"]["name"] == topology
    accounts = by_kind(base, "ServiceAccount")
    assert [a["metadata"]["name"] for a in accounts] == [pod["serviceAccountName"]]


def test_secret_holds_the_credentials_and_only_there(base: list[Manifest]) -> None:
    secret = _named(base, "Secret", "cityops-clickhouse")
    settings = _named(base, "ConfigMap", "cityops-settings")["data"]
    assert set(secret["data"]) == {"CITYOPS_CLICKHOUSE_USER", "CITYOPS_CLICKHOUSE_PASSWORD"}
    assert not {"CITYOPS_CLICKHOUSE_PASSWORD", "CITYOPS_CLICKHOUSE_USER"} & set(settings)
    assert settings["CITYOPS_CLICKHOUSE_URL"].startswith("http")


def test_every_setting_name_is_a_setting(base: list[Manifest]) -> None:
    """A mistyped CITYOPS_ name would be ignored silently (extra="ignore")."""
    known = {f"CITYOPS_{name.upper()}" for name in Settings.model_fields}
    data = _named(base, "ConfigMap", "cityops-settings")["data"]
    names = set(data) | set(_env(_container(_worker(base))))
    secret = read_env_file(K8S / "base" / "clickhouse.env.example")
    used = {name for name in names | set(secret) if name.startswith("CITYOPS_")}
    assert used, "no CITYOPS_ setting found"
    assert used <= known, f"unknown settings: {sorted(used - known)}"


def test_the_topology_configmap_is_a_cluster_topology(base: list[Manifest], tmp_path: Path) -> None:
    config_map = _named(base, "ConfigMap", "cityops-topology")
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text, encoding="utf-8")
    topology = load_topology(tmp_path / "topology.yaml")
    assert topology.sinks.store == "clickhouse"  # several workers, one store
    assert topology.topics.replication == 3
    assert len(topology.sensors) > 0
    size = sum(len(text.encode("utf-8")) for text in config_map["data"].values())
    # etcd's limit is 1 MiB. (A client-side `kubectl apply` would also copy it into a
    # 256 KiB annotation: the whole city is larger, so docs/deploy.md applies server-side.)
    assert size < 1024 * 1024, f"the topology ConfigMap is {size} bytes"
    container = _container(_worker(base))
    mount = next(m for m in container["volumeMounts"] if m["name"] == "topology")
    assert container["args"] == ["worker", "--topology", f"{mount['mountPath']}/topology.yaml"]


def test_the_production_overlay_scales_to_the_partitions(
    rendered: dict[str, list[Manifest]],
) -> None:
    production = rendered["overlays/production"]
    statefulset = _worker(production)
    partitions = load_topology(K8S / "base" / "topology" / "topology.yaml").topics.partitions
    assert 1 < statefulset["spec"]["replicas"] <= partitions
    assert {o["metadata"].get("namespace") for o in production if o["kind"] != "Namespace"} == {
        one(production, "Namespace")["metadata"]["name"]
    }
    base_memory = _container(_worker(rendered["base"]))["resources"]["limits"]["memory"]
    assert _container(statefulset)["resources"]["limits"]["memory"] != base_memory


def test_custom_resources_strimzi_kafka(rendered: dict[str, list[Manifest]]) -> None:
    """Kafka and KafkaNodePool (no schema here): KRaft, 3 nodes, replication 3, min ISR 2."""
    objects = rendered["examples/strimzi"]
    kafka, pool = one(objects, "Kafka"), one(objects, "KafkaNodePool")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["storage"]["type"] in {"jbod", "persistent-claim"}
    spec = kafka["spec"]
    assert "zookeeper" not in spec
    assert spec["kafka"]["version"] == kafka_version()
    assert spec["kafka"]["metadataVersion"].startswith(kafka_version().rsplit(".", 1)[0] + "-IV")
    config = spec["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    plain = next(item for item in spec["kafka"]["listeners"] if item["tls"] is False)
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{plain['port']}"
    settings = _named(rendered["base"], "ConfigMap", "cityops-settings")["data"]
    assert settings["CITYOPS_KAFKA_BOOTSTRAP_SERVERS"] == bootstrap


def test_custom_resources_service_monitor(rendered: dict[str, list[Manifest]]) -> None:
    """ServiceMonitor (no schema here): selects the worker Service and its metrics port."""
    monitor = one(rendered["examples/prometheus-operator"], "ServiceMonitor")
    service = one(rendered["base"], "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in port_names
    assert endpoint["path"] == "/metrics"
    # The operator names the job after the Service: the job the alerts and dashboards use.
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text("utf-8"))
    assert service["metadata"]["name"] == scrape["scrape_configs"][0]["job_name"]


def test_the_clickhouse_example_is_where_the_workers_look(
    rendered: dict[str, list[Manifest]],
) -> None:
    objects = rendered["examples/clickhouse"]
    service = one(objects, "Service")
    server = one(objects, "StatefulSet")
    url = _named(rendered["base"], "ConfigMap", "cityops-settings")["data"][
        "CITYOPS_CLICKHOUSE_URL"
    ]
    http = next(port for port in service["spec"]["ports"] if port["name"] == "http")
    assert url == f"http://{service['metadata']['name']}:{http['port']}"
    image = server["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("clickhouse/clickhouse-server:") and not image.endswith(":latest")
    credentials = read_env_file(K8S / "examples/clickhouse/clickhouse-server.env.example")
    workers = read_env_file(K8S / "base/clickhouse.env.example")
    assert credentials["CLICKHOUSE_USER"] == workers["CITYOPS_CLICKHOUSE_USER"]
    assert set(_named(objects, "Secret", "clickhouse-credentials")["data"]) == set(credentials)


def test_example_files_hold_no_real_password() -> None:
    for example in K8S.rglob("*.env.example"):
        values = read_env_file(example)
        passwords = [v for k, v in values.items() if k.endswith("PASSWORD")]
        assert passwords == ["change-me"], f"{example}: {passwords}"


def test_manifest_files_are_plain_yaml() -> None:
    """Every resource file parses on its own and names its kind (no templating)."""
    files = [p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"]
    files = [p for p in files if p.parent.name != "topology"]
    assert files
    for path in files:
        for document in load_documents(path):
            assert {"apiVersion", "kind", "metadata"} <= set(document), path
