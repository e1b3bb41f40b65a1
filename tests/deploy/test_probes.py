"""The probes the deployment files use are the endpoints the worker serves, on its port:
liveness on /healthz, readiness on /readyz (pipeline/engine/worker/health.py), beside the
/consumer page an operator reads when a ready worker reads nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from pipeline.engine.worker import health
from tests.support.manifests import COMPOSE, K8S, load_documents, one


class _PageRecorder:
    """Stands in for the Faust app: records the paths `health.register` serves."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def page(self, path: str) -> Callable[[Any], Any]:
        self.paths.append(path)
        return lambda handler: handler


def _served() -> list[str]:
    app = _PageRecorder()
    health.register(app, intake=None, writer=None)
    return app.paths


def test_the_worker_serves_liveness_and_readiness() -> None:
    assert _served() == ["/healthz", "/readyz", "/consumer"]


def test_kubernetes_probes_use_them_on_the_web_port() -> None:
    statefulset = one(load_documents(K8S / "base" / "statefulset.yaml"), "StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert str(ports["http"]) == env["CITYOPS_WEB_PORT"]
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = container["readinessProbe"]["httpGet"]
    assert {kind: (p["path"], p["port"]) for kind, p in probes.items()} == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    assert {p["path"] for p in probes.values()} <= set(_served())


def test_compose_calls_a_worker_ready_when_readyz_answers() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    workers = {name: s for name, s in compose["services"].items() if name.startswith("worker")}
    assert len(workers) == 2
    for service in workers.values():
        command = " ".join(service["healthcheck"]["test"])
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", command)
        assert url, command
        assert url[2] == "/readyz" and url[2] in _served()
        assert url[1] == str(service["environment"].get("CITYOPS_WEB_PORT", 6066))
