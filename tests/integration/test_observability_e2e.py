"""Every dashboard panel and alert rule works against a real Prometheus scraping a real worker.

A worker processes the simulator's stream (plus a pollution episode that opens incidents
which escalate under a seconds-long SLA); Debian's Prometheus scrapes its /metrics every
second; every PromQL expression of every Grafana dashboard must return data, and every
alert expression must evaluate.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from deploy.grafana.queries import all_queries
from tests.support.demo import demo_data, deploy
from tests.support.prometheus import PrometheusServer
from tests.support.worker import ROOT, WorkerProcess, produce, sensor_key

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def _episode(start: datetime) -> list[bytes]:
    values = [80.0, 95.0, 160.0, 170.0, 150.0, 140.0, 145.0, 155.0, 150.0, 149.0]
    return [
        orjson.dumps({
            "event_id": f"episode-{i}", "sensor_id": "aq-001", "metric": "pm25", "value": v,
            "unit": "ug/m3", "observed_at": (start + timedelta(seconds=5 * i)).isoformat(),
        })
        for i, v in enumerate(values)
    ]  # fmt: skip


@pytest.mark.integration
async def test_every_dashboard_query_returns_data_from_a_working_pipeline(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = demo_data()
    data["sla"] = {
        sev: {"ack": "2s", "resolve": "1h"} for sev in ("red", "orange", "yellow", "blue")
    }
    data["aggregation"]["window"] = "10s"
    data["aggregation"]["allowed_lateness"] = "2s"
    path, topology = await deploy(
        data, bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )

    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"obs-{topic_prefix}",
        env={"CITYOPS_SLA_CHECK_SECONDS": "1"},
    ).start()  # fmt: skip
    simulator = subprocess.Popen(  # noqa: S603  # our own CLI
        [sys.executable, "-m", "pipeline", "simulate", "--topology", str(path),
         "--bootstrap", kafka_bootstrap, "--rate", "150", "--duration", "70s",
         "--fault-rate", "0.05", "--reports-per-minute", "60", "--episodes-per-hour", "60"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    queries = [q for q in all_queries() if q.expect_data]
    conditions = [q for q in all_queries() if not q.expect_data]
    try:
        with PrometheusServer([f"127.0.0.1:{worker.web_port}"], tmp_path / "prom") as prom:
            prom.wait_for_targets_up(timeout=90)
            episode = _episode(datetime.now(UTC) - timedelta(seconds=60))
            raw = topology.topics.name("raw_sensors")
            await produce(kafka_bootstrap, raw, episode, key_of=sensor_key)
            pending = {q.expr: q for q in queries}
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                assert worker.alive(), worker.log()[-3000:]
                for expr in list(pending):
                    if prom.query(expr):
                        del pending[expr]
                await asyncio.sleep(2)
            empty = [f"{q.source}: {q.expr}" for q in pending.values()]
            assert not empty, "queries that stayed empty:\n" + "\n".join(empty)
            for q in conditions:  # alert expressions must at least evaluate
                prom.query(q.expr)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        worker.stop()
