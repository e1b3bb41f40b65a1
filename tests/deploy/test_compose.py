"""deploy/compose/compose.yaml is a valid compose file, and its services fit together.

The schema check is check-jsonschema's bundled compose specification
(`--builtin-schema vendor.compose-spec`); the rest asserts what the schema cannot know:
pinned images, a three-node KRaft quorum with replication 3 and min.insync.replicas 2,
two workers in one consumer group on the ClickHouse server store, Prometheus scraping both
with the shared rules, Grafana provisioned with the shared dashboards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.settings import Settings
from pipeline.topology import load_topology
from tests.support.manifests import COMPOSE, kafka_version, read_env_file
from tests.support.paths import ROOT

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts of a service: container path -> host path (relative to the file)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_the_compose_specification_accepts_it() -> None:
    done = _check_schema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  worker:\n    image: x:1\n    stop_grace: 60s\n")
    done = _check_schema(broken)
    assert done.returncode != 0
    assert "stop_grace" in done.stdout + done.stderr


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
    assert services["kafka-1"]["image"] == f"apache/kafka:{kafka_version()}"


def test_three_kraft_brokers_replicate_three_times(services: dict[str, Any]) -> None:
    environments = [services[name]["environment"] for name in BROKERS]
    pairs = list(zip(BROKERS, environments, strict=True))
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in pairs}
    cluster_ids = {env["CLUSTER_ID"] for env in environments}
    assert len(cluster_ids) == 1 and len(cluster_ids.pop()) == 22  # base64 of a UUID
    for name, env in pairs:
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2


def test_two_workers_one_group_one_store(services: dict[str, Any]) -> None:
    envs = [services[name]["environment"] for name in WORKERS]
    assert {env["CITYOPS_WORKER_ID"] for env in envs} == {"cityops"}
    assert len({env["CONSUMER_GROUP_INSTANCE_ID"] for env in envs}) == len(WORKERS)
    known = {f"CITYOPS_{name.upper()}" for name in Settings.model_fields}
    for name, env in zip(WORKERS, envs, strict=True):
        service = services[name]
        assert {key for key in env if key.startswith("CITYOPS_")} <= known
        brokers = env["CITYOPS_KAFKA_BOOTSTRAP_SERVERS"].split(",")
        assert brokers == [f"{broker}:19092" for broker in BROKERS]
        assert env["CITYOPS_CLICKHOUSE_URL"] == "http://clickhouse:8123"
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
        assert set(service["depends_on"]) == {*BROKERS, "clickhouse"}
        (target, source), *_ = _mounts(service).items()
        topology = load_topology(source / "topology.yaml")
        assert topology.sinks.store == "clickhouse"
        assert topology.topics.replication == len(BROKERS)
        assert service["command"] == ["worker", "--topology", f"{target}/topology.yaml"]


def test_credentials_come_from_the_uncommitted_env_file(services: dict[str, Any]) -> None:
    example = read_env_file(COMPOSE.parent / ".env.example")
    assert set(example) == {"CITYOPS_CLICKHOUSE_USER", "CITYOPS_CLICKHOUSE_PASSWORD"}
    for name in (*WORKERS, "clickhouse", "grafana"):
        values = services[name]["environment"].values()
        assert any("${CITYOPS_CLICKHOUSE_PASSWORD" in str(value) for value in values), name
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", "deploy/compose/.env"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, "deploy/compose/.env holds secrets: git must ignore it"


def test_prometheus_scrapes_both_workers_with_the_shared_rules(
    services: dict[str, Any],
) -> None:
    mounts = _mounts(services["prometheus"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    assert config_path == ROOT / "deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == ROOT / "deploy/prometheus/alerts.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    (pattern,) = config["scrape_configs"][0]["file_sd_configs"][0]["files"]
    target_file = next(target for target in mounts if target.startswith("/etc/prometheus/targets/"))
    assert Path(target_file).match("/etc/prometheus/" + pattern)
    (group,) = yaml.safe_load(mounts[target_file].read_text(encoding="utf-8"))
    assert sorted(group["targets"]) == [f"{name}:6066" for name in WORKERS]


def test_grafana_gets_the_shared_dashboards(services: dict[str, Any]) -> None:
    mounts = _mounts(services["grafana"])
    provider_dir = mounts["/etc/grafana/provisioning/dashboards"]
    assert provider_dir == ROOT / "deploy/grafana/provisioning/dashboards"
    provider = yaml.safe_load((provider_dir / "cityops.yaml").read_text(encoding="utf-8"))
    dashboards = mounts[provider["providers"][0]["options"]["path"]]
    assert dashboards == ROOT / "deploy/grafana/dashboards"
    assert sorted(dashboards.glob("*.json"))
    ours = yaml.safe_load(mounts[next(t for t in mounts if "datasources" in t)].read_text("utf-8"))
    local = ROOT / "deploy/grafana/provisioning/datasources/cityops.yaml"
    shared = yaml.safe_load(local.read_text(encoding="utf-8"))
    uids = [source["uid"] for source in shared["datasources"]]
    assert [source["uid"] for source in ours["datasources"]] == uids
    assert ours["datasources"][0]["url"] == "http://prometheus:9090"
    assert ours["datasources"][1]["jsonData"]["host"] == "clickhouse"


def test_every_bind_mount_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name}: {source} (for {target}) does not exist"
