"""The committed dashboards are current, and every panel query is a PromQL expression we know.

Why a fixed list: a panel edited by hand, or a metric renamed in pipeline/metrics.py
without its dashboards, shows up here as a diff instead of as an empty panel in
production. Regenerate with `python -m deploy.grafana.generate`; change KNOWN when a
panel is added on purpose. (The integration tests run every one of them against a real
Prometheus.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.grafana import generate
from deploy.grafana.queries import (
    QueryError,
    TimeRange,
    all_queries,
    clickhouse_queries,
    dashboard_queries,
    expand_sql,
    substitute,
)
from deploy.runbooks import DEFAULT_BASE_URL, runbook_url, sections

INST = 'instance=~"$instance"'
C = 'district=~"$district", severity=~"$severity"'
R = "[$__rate_interval]"

KNOWN: dict[str, set[str]] = {
    "pipeline-health.json": {
        "label_values(cityops_worker_info, instance)",
        f'sum(up{{job="cityops-worker", {INST}}})',
        f"sum(rate(cityops_events_in_total{{{INST}}}{R}))",
        f"sum(faust_topic_partition_end_offset{{{INST}}}"
        f" - faust_topic_partition_offset_commited{{{INST}}})",
        f'(sum(rate(cityops_dead_letters_total{{stage="normalize", {INST}}}{R})) or vector(0))'
        f" / clamp_min(sum(rate(cityops_events_in_total{{{INST}}}{R})), 1e-9)",
        f"sum by (stage) (rate(cityops_dead_letters_total{{{INST}}}{R}))",
        f'sum by (reason) (rate(cityops_dead_letters_total{{stage="lifecycle", {INST}}}{R}))',
        f"max by (instance, version, topology) (cityops_worker_info{{{INST}}})",
        f"max by (instance) (faust_total_rebalances{{{INST}}})",
        f"sum by (topic_kind) (rate(cityops_events_in_total{{{INST}}}{R}))",
        f"sum by (format) (rate(cityops_events_in_total{{{INST}}}{R}))",
        f"sum by (kind) (rate(cityops_normalized_events_total{{{INST}}}{R}))",
        f"sum by (topic) (rate(faust_messages_received_per_topic_total{{{INST}}}{R}))",
        f"max by (topic, partition) (faust_topic_partition_end_offset{{{INST}}}"
        f" - faust_topic_partition_offset_commited{{{INST}}})",
        f"sum by (stage, reason) (rate(cityops_dead_letters_total{{{INST}}}{R}))",
        f"sum(rate(cityops_duplicates_dropped_total{{{INST}}}{R}))",
        f"sum(rate(cityops_late_events_dropped_total{{{INST}}}{R}))",
        f"sum(rate(cityops_windows_closed_total{{{INST}}}{R}))",
        *(
            f"histogram_quantile({q}, sum by (stage, le) "
            f"(rate(cityops_processing_latency_seconds_bucket{{{INST}}}{R})))"
            for q in ("0.5", "0.99")
        ),
        *(
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(cityops_event_time_lag_seconds_bucket{{{INST}}}{R})))"
            for q in ("0.5", "0.99")
        ),
        f"sum(rate(cityops_store_batch_rows_sum{{{INST}}}{R}))"
        f" / sum(rate(cityops_store_batch_rows_count{{{INST}}}{R}))",
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(cityops_store_batch_rows_bucket{{{INST}}}{R})))",
        *(
            f"histogram_quantile({q}, sum by (backend, le) "
            f"(rate(cityops_store_insert_seconds_bucket{{{INST}}}{R})))"
            for q in ("0.5", "0.99")
        ),
        f"sum by (backend) (rate(cityops_store_failures_total{{{INST}}}{R}))",
        f"sum by (backend) (rate(cityops_store_retries_total{{{INST}}}{R}))",
    },
    "city-operations.json": {
        "label_values(cityops_incident_events_total, district)",
        f"sum(cityops_open_incidents{{{C}}})",
        'sum(cityops_open_incidents{district=~"$district", severity="red"}) or vector(0)',
        f'sum(increase(cityops_incident_events_total{{action="open", {C}}}[$__range]))',
        'sum(increase(cityops_sla_breaches_total{severity=~"$severity"}[$__range]))',
        "sum by (action) (rate(cityops_incident_events_total{"
        f'action=~"open|upgrade|escalate|resolve|auto_resolve", {C}}}{R})) * 60',
        f'sum by (severity) (rate(cityops_incident_events_total{{action="open", {C}}}{R})) * 60',
        "sum by (district, action, severity) "
        f"(increase(cityops_incident_events_total{{{C}}}[$__range]))",
        f"sum by (district) (cityops_open_incidents{{{C}}})",
        f"sum by (severity) (cityops_open_incidents{{{C}}})",
        "sum by (severity, level) "
        f'(rate(cityops_sla_breaches_total{{severity=~"$severity"}}{R})) * 3600',
        f'sum by (level) (increase(cityops_incident_events_total{{action="escalate", {C}}}'
        "[$__range]))",
    },
    "incidents.json": set(),  # ClickHouse only: tests/integration/test_grafana_sql.py
}

#: Every metric family the dashboards may name: ours (pipeline/metrics.py) and faust's.
FAMILIES = {
    "up",
    "cityops_events_in_total",
    "cityops_normalized_events_total",
    "cityops_dead_letters_total",
    "cityops_duplicates_dropped_total",
    "cityops_incident_events_total",
    "cityops_open_incidents",
    "cityops_sla_breaches_total",
    "cityops_processing_latency_seconds_bucket",
    "cityops_event_time_lag_seconds_bucket",
    "cityops_windows_closed_total",
    "cityops_late_events_dropped_total",
    "cityops_store_batch_rows_bucket",
    "cityops_store_batch_rows_sum",
    "cityops_store_batch_rows_count",
    "cityops_store_insert_seconds_bucket",
    "cityops_store_failures_total",
    "cityops_store_retries_total",
    "cityops_worker_info",
    "faust_topic_partition_end_offset",
    "faust_topic_partition_offset_commited",
    "faust_messages_received_per_topic_total",
    "faust_total_rebalances",
}
_FUNCTIONS = {"sum", "rate", "increase", "max", "histogram_quantile", "clamp_min", "vector",
              "label_values", "count"}  # fmt: skip


def _templates(name: str) -> set[str]:
    return {q.template for q in dashboard_queries(generate.DASHBOARD_DIR / name)}


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_committed_dashboard_is_current(name: str) -> None:
    committed = (generate.DASHBOARD_DIR / name).read_text(encoding="utf-8")
    assert committed == generate.rendered()[name], "run: python -m deploy.grafana.generate"


def test_check_mode_reports_stale_files(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "city-operations.json").write_text("{}\n", encoding="utf-8")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_panel_queries_are_the_known_ones(name: str) -> None:
    assert _templates(name) == KNOWN[name]


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_queries_name_only_known_metrics_and_functions(name: str) -> None:
    for template in KNOWN[name]:
        without_strings = re.sub(r'"[^"]*"', '""', template)
        without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
        without_ranges = re.sub(r"\[[^]]*\]", "", without_labels)
        without_grouping = re.sub(r"\bby \([^)]*\)", "", without_ranges)
        names = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", without_grouping))
        names -= {"or", "and", "unless", "e", "instance", "district"}
        assert names <= FAMILIES | _FUNCTIONS, (template, names - FAMILIES - _FUNCTIONS)
        assert template.count("(") == template.count(")"), template


def test_every_panel_has_a_unique_id_and_a_description() -> None:
    for name in generate.DASHBOARDS:
        board = json.loads((generate.DASHBOARD_DIR / name).read_text(encoding="utf-8"))
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel.get("description"), panel["title"]
                assert panel["targets"], panel["title"]


def test_clickhouse_panels_use_the_datasource_variable() -> None:
    board = json.loads((generate.DASHBOARD_DIR / "city-operations.json").read_text("utf-8"))
    clickhouse = [
        p for p in board["panels"] if p.get("datasource", {}).get("uid") == "${ds_clickhouse}"
    ]
    assert len(clickhouse) == 2
    for panel in clickhouse:
        (target,) = panel["targets"]
        assert "FROM cityops.aggregates FINAL" in target["rawSql"]
        assert "$__timeFilter(window_start)" in target["rawSql"]
    names = {v["name"] for v in board["templating"]["list"]}
    assert names == {"ds_prometheus", "ds_clickhouse", "district", "severity"}


def test_substitute_replaces_variables_and_refuses_unknown_ones() -> None:
    values = {"district": ".*", "__rate_interval": "1m"}
    assert substitute('x{d=~"$district"}[$__rate_interval]', values) == 'x{d=~".*"}[1m]'
    assert substitute('x{d=~"${district:regex}"}', values) == 'x{d=~".*"}'
    with pytest.raises(QueryError, match="nope"):
        substitute("x[$nope]", values)


def test_lister_substitutes_everything() -> None:
    queries = all_queries()
    assert queries
    for query in queries:
        assert "$" not in query.expr.replace('"$1"', ""), query
    sources = {q.source for q in queries}
    assert "pipeline-health.json: Consumer lag per partition [A]" in sources
    assert "alerts.yml: alert CityopsConsumerLagGrowing" in sources


def _board(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((generate.DASHBOARD_DIR / name).read_text("utf-8"))
    return data


def _links(board: dict[str, Any]) -> list[str]:
    """Every external link of a dashboard: its own and its panels'."""
    links = [link for link in board.get("links", []) if link.get("type") == "link"]
    links += [link for panel in board["panels"] for link in panel.get("links", [])]
    return [link["url"] for link in links]


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_runbook_links_are_absolute_and_point_at_existing_sections(name: str) -> None:
    urls = _links(_board(name))
    assert urls, name
    anchors = sections()
    for url in urls:
        assert url.startswith(DEFAULT_BASE_URL + "#"), url
        assert url.split("#", 1)[1] in anchors, url


def test_the_runbook_base_url_is_configurable(tmp_path: Path) -> None:
    base = "https://wiki.city.example/ops/cityops.md"
    assert generate.main(["--out", str(tmp_path), "--runbook-base-url", base]) == 0
    for name in generate.DASHBOARDS:
        urls = _links(json.loads((tmp_path / name).read_text(encoding="utf-8")))
        assert urls and all(url.startswith(base + "#") for url in urls), name
    assert generate.main(["--out", str(tmp_path), "--runbook-base-url", "docs/operations.md"]) == 2


def test_alerts_panels_link_their_runbooks() -> None:
    health = {p["title"]: p for p in _board("pipeline-health.json")["panels"]}
    (link,) = health["Workers up"]["links"]
    assert link["url"] == runbook_url("CityopsWorkerDown", DEFAULT_BASE_URL)
    assert link["url"].endswith("#cityopsworkerdown") and link["targetBlank"]


def test_the_incidents_dashboard_has_a_map_a_table_a_grid_and_street_rows() -> None:
    board = _board("incidents.json")
    panels = {p["title"]: p for p in board["panels"]}
    assert panels["Incident map"]["type"] == "geomap"
    assert panels["Grid heat map"]["type"] == "geomap"
    assert {panels[t]["type"] for t in ("Incidents", "Grid cells")} == {"table"}
    layer = panels["Incident map"]["options"]["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    assert "FROM cityops.incidents FINAL" in panels["Incidents"]["targets"][0]["rawSql"]
    assert "level = 'grid'" in panels["Grid heat map"]["targets"][0]["rawSql"]
    (street_row,) = [p for p in board["panels"] if p["type"] == "row" and p.get("repeat")]
    assert street_row["repeat"] == "street" and street_row["title"] == "Street $street"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["street"]["multi"] is True
    assert variables["street"]["datasource"]["type"] == "grafana-clickhouse-datasource"


def test_no_clickhouse_panel_reads_city_rows() -> None:
    """The store keeps no city rows (the city is rolled up from districts at read time)."""
    for name in generate.DASHBOARDS:
        for query in clickhouse_queries(generate.DASHBOARD_DIR / name):
            assert "level = 'city'" not in query.template, query.source


def test_clickhouse_macros_expand_as_the_plugin_documents() -> None:
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    window = TimeRange(start, start + timedelta(hours=1), interval_seconds=20)
    text = expand_sql(
        "SELECT $__timeInterval(t) AS time FROM x WHERE $__timeFilter(t) AND a = '${v}'",
        {"v": "310101"},
        window,
    )
    assert text == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 20 second) AS time FROM x "
        "WHERE t >= toDateTime(1714557600) AND t <= toDateTime(1714561200) AND a = '310101'"
    )
