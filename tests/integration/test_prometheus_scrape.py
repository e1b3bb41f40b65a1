"""Every dashboard and alert expression runs against a real Prometheus scraping our metrics.

A small HTTP server in the test process serves a registry built exactly as the worker
builds it (`Metrics.create` plus faust's `FaustMetrics` with prefix "faust"), fed with
realistic values by a background thread. Prometheus scrapes it every second; then every
expression from `deploy.grafana.queries` must evaluate, and every dashboard query must
return data. The end-to-end test points the same check at a real worker.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry, start_http_server

from deploy.grafana.queries import Query, all_queries
from pipeline.metrics import Metrics
from tests.support.prometheus import PrometheusError, PrometheusServer, free_port

DISTRICTS = ("310101", "310104", "310115")
SEVERITIES = ("blue", "yellow", "orange", "red")
TOPICS = ("cityops.shanghai.sensors.raw", "cityops.shanghai.reports.raw")
LAG = 42  # end offset minus committed offset on every partition


def feed(metrics: Metrics, faust: FaustMetrics, tick: int) -> None:
    """One tick of a busy worker: events in, some dead letters, incidents, store inserts."""
    for kind, fmt, n in (
        ("raw_sensors", "ngsi_v2", 40),
        ("raw_sensors", "canonical", 20),
        ("raw_reports", "open311", 3),
    ):
        metrics.events_in.labels(topic_kind=kind, format=fmt).inc(n)
    metrics.normalized.labels(kind="reading").inc(58)
    metrics.normalized.labels(kind="report").inc(3)
    metrics.dead_letters.labels(stage="normalize", reason="invalid_json").inc()
    metrics.dead_letters.labels(stage="normalize", reason="unknown_sensor").inc(tick % 2)
    metrics.dead_letters.labels(stage="lifecycle", reason="invalid_transition").inc(tick % 3)
    metrics.duplicates.inc()
    metrics.late_events.inc(tick % 3)
    for i, district in enumerate(DISTRICTS):
        severity = SEVERITIES[(tick + i) % 4]
        for action in ("open", "upgrade", "escalate", "resolve", "auto_resolve"):
            metrics.incident_events.labels(
                action=action, severity=severity, level="street", district=district
            ).inc()
        metrics.open_incidents.labels(district=district, severity=severity).set(1 + tick % 5)
        metrics.open_incidents.labels(district=district, severity="red").set(i)
    metrics.sla_breaches.labels(severity="yellow", level="street").inc()
    metrics.sla_breaches.labels(severity="red", level="district").inc(tick % 2)
    for stage, seconds in (("normalize", 0.004), ("detect", 0.02), ("route", 0.06)):
        metrics.processing_latency.labels(stage=stage).observe(seconds * (1 + tick % 3))
    metrics.event_time_lag.observe(0.8 + tick % 4)
    metrics.windows_closed.inc(4)
    metrics.store_batch_rows.observe(120 + tick)
    metrics.store_insert_seconds.labels(backend="chdb").observe(0.03)
    metrics.store_failures.labels(backend="chdb").inc(tick % 2)
    metrics.store_retries.labels(backend="chdb").inc(tick % 2)
    for topic in TOPICS:
        for partition in range(3):
            committed = 1000 * tick + 10 * partition
            faust.topic_partition_offset_commited.labels(topic=topic, partition=partition).set(
                committed
            )
            faust.topic_partition_end_offset.labels(topic=topic, partition=partition).set(
                committed + LAG
            )
            faust.messages_received_per_topics.labels(topic=topic).inc(30)
            faust.messages_received_per_topics_partition.labels(
                topic=topic, partition=partition
            ).set(committed)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping a live registry that a thread keeps updating."""
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    faust = FaustMetrics.create(registry, "faust")
    metrics.worker_info.info({"version": "0.1.0", "topology": "shanghai"})
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def run() -> None:
        tick = 0
        while not stop.wait(0.25):
            tick += 1
            feed(metrics, faust, tick)

    feeder = threading.Thread(target=run, name="metrics-feeder", daemon=True)
    feed(metrics, faust, 0)
    feeder.start()
    prom = PrometheusServer([f"127.0.0.1:{port}"], tmp_path_factory.mktemp("prometheus"))
    try:
        prom.start()
        prom.wait_for_targets_up()
        yield prom
    finally:
        prom.stop()
        stop.set()
        feeder.join(5)
        server.shutdown()
        server.server_close()
        thread.join(5)


QUERIES = all_queries()
DATA_QUERIES = [q for q in QUERIES if q.expect_data]
CONDITIONS = [q for q in QUERIES if not q.expect_data]


def test_lister_found_every_dashboard_and_rule() -> None:
    sources = {q.source.split(":")[0] for q in QUERIES}
    assert sources == {"pipeline-health.json", "city-operations.json", "alerts.yml"}
    assert len(DATA_QUERIES) >= 35
    assert {q.source for q in CONDITIONS} >= {
        "alerts.yml: alert CityopsWorkerDown",
        "alerts.yml: alert CityopsStoreFailing",
    }


def _has_data(prom: PrometheusServer, query: Query) -> bool:
    return any(not math.isnan(float(s["value"][1])) for s in prom.query(query.expr))


def test_every_dashboard_query_returns_data(scraped: PrometheusServer) -> None:
    try:
        scraped.wait_for(
            lambda: all(_has_data(scraped, q) for q in DATA_QUERIES),
            timeout=90,
            what="every dashboard query returning data",
        )
    except PrometheusError:
        empty = [f"{q.source}: {q.expr}" for q in DATA_QUERIES if not _has_data(scraped, q)]
        pytest.fail("queries without data:\n" + "\n".join(empty))


@pytest.mark.parametrize("query", CONDITIONS, ids=lambda q: q.source)
def test_alert_expressions_evaluate(scraped: PrometheusServer, query: Query) -> None:
    scraped.query(query.expr)  # raises PrometheusError on a bad expression


def test_consumer_lag_is_end_minus_committed(scraped: PrometheusServer) -> None:
    lag = scraped.query_values(
        "max by (topic, partition) (faust_topic_partition_end_offset"
        " - faust_topic_partition_offset_commited)"
    )
    assert len(lag) == len(TOPICS) * 3
    assert set(lag.values()) == {float(LAG)}


def test_worker_info_and_open_incidents(scraped: PrometheusServer) -> None:
    info = scraped.query_values("max by (version, topology) (cityops_worker_info)")
    assert info == {"topology=shanghai,version=0.1.0": 1.0}
    red = scraped.query_values('sum by (district) (cityops_open_incidents{severity="red"})')
    # district i has i red incidents, plus sometimes the rotating severity's count
    assert set(red) == {f"district={d}" for d in DISTRICTS}


def test_dead_letter_ratio_is_a_fraction(scraped: PrometheusServer) -> None:
    scraped.wait_for(
        lambda: bool(scraped.query_values("sum(rate(cityops_dead_letters_total[1m]))")),
        what="dead-letter rate",
    )
    ratio = scraped.query_values(
        'sum(rate(cityops_dead_letters_total{stage="normalize"}[1m]))'
        " / sum(rate(cityops_events_in_total[1m]))"
    )
    (value,) = ratio.values()
    # 1-2 raw records dead-lettered per 63 consumed; refused updates are not raw input
    assert 0.01 < value < 0.04
