"""/healthz and /readyz on a real worker on the real broker (the probes the Kubernetes
manifests and compose use): ready once it works; alive but unready while its store is
unreachable, each failing check naming itself."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.demo import demo_data, deploy
from tests.support.worker import WorkerProcess, free_port

#: How long a worker may take to join its group and start (a bound, not a measurement).
START_WITHIN = 120.0


def _get(port: int, path: str) -> tuple[int, dict[str, Any]] | None:
    """Status and JSON body of GET path, or None while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:  # noqa: S310  # our own worker
            return int(answer.status), orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), orjson.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


async def _until(worker: WorkerProcess, path: str, done: Any) -> tuple[int, dict[str, Any]]:
    """Poll ``path`` until ``done(status, body)``; fail if the worker dies or time runs out."""
    deadline = time.monotonic() + START_WITHIN
    last = None
    while time.monotonic() < deadline:
        assert worker.alive(), worker.report()
        last = _get(worker.web_port, path)
        if last is not None and done(*last):
            return last
        await asyncio.sleep(0.5)
    msg = f"{path} never as expected; last answer {last}:\n{worker.report()}"
    raise AssertionError(msg)


@pytest.mark.integration
async def test_a_working_worker_is_alive_and_ready(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, _ = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    with WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"ready-{topic_prefix}"
    ) as worker:
        status, body = await _until(worker, "/readyz", lambda status, _: status == 200)
        assert body["ready"] is True
        assert all(check["ok"] for check in body["checks"].values()), body
        assert body["checks"]["partitions"]["detail"].endswith("partitions assigned")
        assert not body["checks"]["partitions"]["detail"].startswith("0 ")
        assert _get(worker.web_port, "/healthz") == (200, {"alive": True})


def _all_but_the_store(_: int, body: dict[str, Any]) -> bool:
    return all(check["ok"] for name, check in body["checks"].items() if name != "store")


@pytest.mark.integration
async def test_a_worker_whose_store_is_unreachable_is_alive_but_not_ready(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = demo_data()
    data["sinks"] = {"store": "clickhouse", "clickhouse": {"database": "unreachable"}}
    path, _ = await deploy(data, bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix)
    nobody = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    with WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"unready-{topic_prefix}",
        env={"CITYOPS_CLICKHOUSE_URL": nobody},
    ) as worker:  # fmt: skip
        # Once everything else works (partitions, recovery, intake), only the store fails.
        status, body = await _until(worker, "/readyz", _all_but_the_store)
        assert status == 503 and body["ready"] is False, body
        assert body["checks"]["store"] == {
            "ok": False,
            "detail": "not initialised yet (unreachable or still starting)",
        }
        assert _get(worker.web_port, "/healthz") == (200, {"alive": True})
