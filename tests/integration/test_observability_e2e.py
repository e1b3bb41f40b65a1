"""Every dashboard panel and alert rule works against a real Prometheus scraping a real worker.

A worker processes the simulator's stream (plus a pollution episode that opens incidents
which escalate under a seconds-long SLA, and units' updates the lifecycle refuses);
Debian's Prometheus scrapes its /metrics every second; every PromQL expression of every
Grafana dashboard must return data, and every alert expression must evaluate. The worker
stores into ClickHouse (the test's server on the embedded engine), and the dashboards'
ClickHouse queries must return data from what it wrote: its aggregates and its incidents.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from deploy.grafana.generate import DASHBOARD_DIR
from deploy.grafana.queries import TimeRange, all_queries, clickhouse_queries
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.demo import demo_data, deploy
from tests.support.grafana_sql import PanelRunner
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


def _refused_updates() -> list[bytes]:
    """Updates for incidents that do not exist: the lifecycle dead-letters them."""
    return [
        orjson.dumps({
            "update_id": f"forged-{i}", "incident_id": f"no-such-incident-{i}",
            "action": "acknowledge", "unit": "310101002", "at": datetime.now(UTC).isoformat(),
        })
        for i in range(3)
    ]  # fmt: skip


def _labels_missing(prom: PrometheusServer) -> list[str]:
    """What the labels do not show yet: SLA breaches count the level that missed the
    deadline, escalations the level that owns the incident now, dead letters their stage.

    Why polled, not read once: these counters move when the SLA timer fires and the next
    scrape lands, seconds after the dashboards' queries first return data (a district-owned
    incident's breach can fill the SLA panel before the episode's street misses its ack)."""
    missing = []
    breaches = prom.query_values("sum by (level) (cityops_sla_breaches_total)")
    if not breaches.get("level=street", 0) > 0:
        missing.append(f"a street SLA breach (the street missed the 2 s ack): {breaches}")
    escalated = prom.query_values(
        'sum by (level) (cityops_incident_events_total{action="escalate"})'
    )
    if not escalated.get("level=district", 0) > 0:
        missing.append(f"an escalation the district owns: {escalated}")
    stages = prom.query_values("sum by (stage) (cityops_dead_letters_total)")
    if not (stages.get("stage=normalize", 0) > 0 and stages.get("stage=lifecycle", 0) >= 3):
        missing.append(f"dead letters of normalize and 3 of lifecycle: {stages}")
    return missing


async def _check_labels(prom: PrometheusServer, deadline: float) -> None:
    missing = _labels_missing(prom)
    while missing and time.monotonic() < deadline:
        await asyncio.sleep(1)
        missing = _labels_missing(prom)
    assert not missing, missing
    breaches = prom.query_values("sum by (level) (cityops_sla_breaches_total)")
    assert "level=city" not in breaches, breaches  # the top level never escalates


#: Panels whose data the demo stream cannot give (checked with inserted rows in
#: test_grafana_sql.py): the worker writes no grid rows yet, and the demo's incidents
#: carry no location before the contract has one.
NEEDS_GRID_OR_LOCATION = {
    "incidents.json: Grid heat map [A]",
    "incidents.json: Grid cells [A]",
    "incidents.json: Incident map [A]",
}


def _check_sql_panels(ch_server: ClickHouseHTTPServer, database: str) -> None:
    window = TimeRange(datetime.now(UTC) - timedelta(hours=6), datetime.now(UTC))
    runner = PanelRunner(ch_server.chdb_path, database, window)
    stored = runner.run("SELECT count() AS n FROM cityops.incidents FINAL")
    assert int(stored[0]["n"]) > 0, "the worker stored no incident"
    located = runner.run("SELECT count() AS n FROM cityops.incidents WHERE lat IS NOT NULL")
    empty = []
    for board in sorted(DASHBOARD_DIR.glob("*.json")):
        for query in clickhouse_queries(board):
            if query.source in NEEDS_GRID_OR_LOCATION:
                if query.source.endswith("Incident map [A]") and int(located[0]["n"]):
                    assert runner.rows(board, query, metric="pm25"), query.source
                continue
            # the episode's street (sensor aq-001): it has readings and incidents
            if not runner.rows(board, query, street="310101002", metric="pm25"):
                empty.append(query.source)
    assert not empty, f"ClickHouse panels without data: {empty}"


@pytest.mark.integration
async def test_every_dashboard_query_returns_data_from_a_working_pipeline(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, ch_server: ClickHouseHTTPServer
) -> None:
    database = f"obs_{uuid.uuid4().hex[:10]}"
    data = demo_data()
    data["sinks"] = {"store": "clickhouse", "clickhouse": {"database": database}}
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
        env={"CITYOPS_SLA_CHECK_SECONDS": "1", "CITYOPS_CLICKHOUSE_URL": ch_server.url,
             "CITYOPS_CLICKHOUSE_USER": "cityops", "CITYOPS_CLICKHOUSE_PASSWORD": "s3cret"},
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
            updates = topology.topics.name("incident_updates")
            await produce(kafka_bootstrap, updates, _refused_updates())
            pending = {q.expr: q for q in queries}
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                assert worker.alive(), worker.report()
                for expr in list(pending):
                    if prom.query(expr):
                        del pending[expr]
                await asyncio.sleep(2)
            empty = [f"{q.source}: {q.expr}" for q in pending.values()]
            assert not empty, "queries that stayed empty:\n" + "\n".join(empty)
            for q in conditions:  # alert expressions must at least evaluate
                prom.query(q.expr)
            await _check_labels(prom, time.monotonic() + 60)
        _check_sql_panels(ch_server, database)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        worker.stop()
