"""Grafana dashboards as code: `python -m deploy.grafana.generate [--check]`.

Why code: every panel query lives in one reviewed place, the committed JSON under
`dashboards/` is regenerated from it (a unit test fails when it is stale), and the
query lister (`deploy/grafana/queries.py`) runs each expression against a real
Prometheus. Built with grafana-foundation-sdk's typed builders.

Datasources are template variables (`ds_prometheus`, `ds_clickhouse`) so the same JSON
works with whatever uid a Grafana instance gives its datasources.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as prom_m

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="${ds_prometheus}")
CLICKHOUSE = dm.DataSourceRef(type_val="grafana-clickhouse-datasource", uid="${ds_clickhouse}")

#: Selector shared by every pipeline-health query: the worker instances picked above.
INST = 'instance=~"$instance"'
#: Selector shared by the city-operations incident queries.
CITY = 'district=~"$district", severity=~"$severity"'
RATE = "[$__rate_interval]"

PanelBuilder = cogbuilder.Builder[dm.Panel]


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL target for the grafana-clickhouse-datasource plugin (the SDK has none)."""

    def __init__(self, ref_id: str, sql: str, fmt: int = 1) -> None:
        self.ref_id = ref_id
        self.sql = sql
        self.fmt = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": self.fmt,
            "queryType": "table" if self.fmt == 1 else "timeseries",
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builder wrapper so a ClickHouse target plugs into the SDK's `with_target`."""

    def __init__(self, ref_id: str, sql: str, fmt: int = 1) -> None:
        self._query = ClickHouseQuery(ref_id, sql, fmt)

    def build(self) -> ClickHouseQuery:
        return self._query


def prom(expr: str, legend: str = "__auto", ref_id: str = "A") -> prom_b.Dataquery:
    """One Prometheus target on the dashboard's Prometheus datasource variable."""
    return (
        prom_b.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .range()
    )


def instant(expr: str, legend: str = "__auto", ref_id: str = "A") -> prom_b.Dataquery:
    """An instant Prometheus target, for stats, bar gauges and tables."""
    return (
        prom_b.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .instant()
        .format(prom_m.PromQueryFormat.TABLE)
    )


def legend() -> common_b.VizLegendOptions:
    return (
        common_b.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def graph(
    title: str,
    description: str,
    targets: list[prom_b.Dataquery],
    *,
    unit: str = "short",
    width: int = 12,
    stacked: bool = False,
) -> timeseries.Panel:
    """A time-series panel; `stacked` for parts of a whole (per kind, per district)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(legend())
    )
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def big_number(
    title: str,
    description: str,
    target: prom_b.Dataquery,
    *,
    unit: str = "short",
    width: int = 6,
    steps: Sequence[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """A stat panel with threshold colours (`steps` = (from value, colour), first is None)."""
    thresholds = dash.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
    thresholds = thresholds.steps(
        [dm.Threshold(value=v, color=c) for v, c in (steps or [(None, "green")])]
    )
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(5)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(thresholds)
        .with_target(target)
    )


def bars(
    title: str, description: str, target: prom_b.Dataquery, *, width: int = 12
) -> bargauge.Panel:
    """A horizontal bar gauge, for a current breakdown (open incidents by district)."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .span(width)
        .height(8)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .with_target(target)
    )


def prom_datasource_var() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("ds_prometheus").label("Prometheus").type("prometheus")


def instance_var() -> dash.QueryVariable:
    return (
        dash.QueryVariable("instance")
        .label("Worker")
        .datasource(PROMETHEUS)
        .query("label_values(cityops_worker_info, instance)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def assemble(board: dash.Dashboard, layout: list[PanelBuilder | dash.Row]) -> dash.Dashboard:
    """Add rows and panels in order, each with a stable id in layout order."""
    for panel_id, item in enumerate(layout, start=1):
        if isinstance(item, dash.Row):
            board = board.with_row(item.id(panel_id))
        else:
            built = item.build()
            built.id_val = panel_id
            board = board.with_panel(_Built(built))
    return board


class _Built(cogbuilder.Builder[dm.Panel]):
    """An already built panel, so `assemble` can set its id whatever its builder type."""

    def __init__(self, panel: dm.Panel) -> None:
        self._panel = panel

    def build(self) -> dm.Panel:
        return self._panel


def pipeline_health() -> dash.Dashboard:
    """Is the worker keeping up, losing data, or stuck on its sink?"""
    board = (
        dash.Dashboard("cityops / Pipeline health")
        .uid("cityops-pipeline-health")
        .description("Throughput, consumer lag, dead letters, latency and the store sink.")
        .tags(["cityops", "pipeline"])
        .timezone("utc")
        .time("now-1h", "now")
        .refresh("30s")
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(prom_datasource_var())
        .with_variable(instance_var())
    )
    layout: list[PanelBuilder | dash.Row] = [
        dash.Row("Workers"),
        big_number(
            "Workers up",
            "Scrape targets of job cityops-worker that answered the last scrape.",
            instant(f'sum(up{{job="cityops-worker", {INST}}})'),
            steps=[(None, "red"), (1, "green")],
        ),
        big_number(
            "Events in /s",
            "Raw records consumed per second, all topic kinds.",
            instant(f"sum(rate(cityops_events_in_total{{{INST}}}{RATE}))"),
            unit="ops",
        ),
        big_number(
            "Consumer lag (messages)",
            "Messages on the input partitions not yet committed by this consumer group.",
            instant(
                f"sum(faust_topic_partition_end_offset{{{INST}}}"
                f" - faust_topic_partition_offset_commited{{{INST}}})"
            ),
            steps=[(None, "green"), (1000, "orange"), (10000, "red")],
        ),
        big_number(
            "Dead-letter ratio",
            "Dead letters divided by records consumed.",
            instant(
                f"(sum(rate(cityops_dead_letters_total{{{INST}}}{RATE})) or vector(0))"
                f" / clamp_min(sum(rate(cityops_events_in_total{{{INST}}}{RATE})), 1e-9)"
            ),
            unit="percentunit",
            steps=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        table.Panel()
        .title("Worker info")
        .description("Version and topology of each worker, from cityops_worker_info.")
        .datasource(PROMETHEUS)
        .span(12)
        .height(5)
        .with_target(
            instant(f"max by (instance, version, topology) (cityops_worker_info{{{INST}}})")
        ),
        graph(
            "Rebalances",
            "Consumer-group rebalances per worker (faust sensor); a rising line means workers "
            "join, leave or time out.",
            [prom(f"max by (instance) (faust_total_rebalances{{{INST}}})", "{{instance}}")],
        ),
        dash.Row("Throughput"),
        graph(
            "Events in per topic kind",
            "Raw records consumed per second, by topic kind.",
            [
                prom(
                    f"sum by (topic_kind) (rate(cityops_events_in_total{{{INST}}}{RATE}))",
                    "{{topic_kind}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Events in per source format",
            "Raw records consumed per second, by detected input format.",
            [
                prom(
                    f"sum by (format) (rate(cityops_events_in_total{{{INST}}}{RATE}))",
                    "{{format}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Canonical events out",
            "Readings and reports produced per second by normalization.",
            [
                prom(
                    f"sum by (kind) (rate(cityops_normalized_events_total{{{INST}}}{RATE}))",
                    "{{kind}}",
                )
            ],
            unit="ops",
        ),
        graph(
            "Messages received per topic (faust)",
            "Every message the consumer received, per topic, as counted by faust.",
            [
                prom(
                    f"sum by (topic) (rate(faust_messages_received_per_topic_total{{{INST}}}"
                    f"{RATE}))",
                    "{{topic}}",
                )
            ],
            unit="ops",
        ),
        dash.Row("Consumer lag"),
        graph(
            "Consumer lag per partition",
            "End offset minus committed offset for every assigned partition.",
            [
                prom(
                    f"max by (topic, partition) (faust_topic_partition_end_offset{{{INST}}}"
                    f" - faust_topic_partition_offset_commited{{{INST}}})",
                    "{{topic}}[{{partition}}]",
                )
            ],
            width=24,
        ),
        dash.Row("Dead letters and drops"),
        graph(
            "Dead letters by reason",
            "Records sent to the dead-letter topic per second, by stage and reason.",
            [
                prom(
                    f"sum by (stage, reason) (rate(cityops_dead_letters_total{{{INST}}}{RATE}))",
                    "{{stage}} {{reason}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Dead-letter ratio",
            "Share of consumed records that were dead-lettered.",
            [
                prom(
                    f"(sum(rate(cityops_dead_letters_total{{{INST}}}{RATE})) or vector(0))"
                    f" / clamp_min(sum(rate(cityops_events_in_total{{{INST}}}{RATE})), 1e-9)",
                    "ratio",
                )
            ],
            unit="percentunit",
        ),
        graph(
            "Duplicates and late events dropped",
            "Re-sent events dropped by deduplication, and readings later than the "
            "aggregation's allowed lateness.",
            [
                prom(
                    f"sum(rate(cityops_duplicates_dropped_total{{{INST}}}{RATE}))",
                    "duplicates",
                ),
                prom(
                    f"sum(rate(cityops_late_events_dropped_total{{{INST}}}{RATE}))",
                    "late",
                    "B",
                ),
            ],
            unit="ops",
        ),
        graph(
            "Aggregate windows closed",
            "Windows the aggregator closed and handed to the store, per second.",
            [prom(f"sum(rate(cityops_windows_closed_total{{{INST}}}{RATE}))", "windows")],
            unit="ops",
        ),
        dash.Row("Latency"),
        graph(
            "Processing latency p50 / p99",
            "Raw record timestamp to output produced, by stage.",
            [
                prom(
                    "histogram_quantile(0.5, sum by (stage, le) "
                    f"(rate(cityops_processing_latency_seconds_bucket{{{INST}}}{RATE})))",
                    "p50 {{stage}}",
                ),
                prom(
                    "histogram_quantile(0.99, sum by (stage, le) "
                    f"(rate(cityops_processing_latency_seconds_bucket{{{INST}}}{RATE})))",
                    "p99 {{stage}}",
                    "B",
                ),
            ],
            unit="s",
        ),
        graph(
            "Event-time lag p50 / p99",
            "Processing time minus the readings' own timestamps: how far behind reality.",
            [
                prom(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(cityops_event_time_lag_seconds_bucket{{{INST}}}{RATE})))",
                    "p50",
                ),
                prom(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(cityops_event_time_lag_seconds_bucket{{{INST}}}{RATE})))",
                    "p99",
                    "B",
                ),
            ],
            unit="s",
        ),
        dash.Row("Store"),
        graph(
            "Store batch size",
            "Rows per store insert: mean and p99.",
            [
                prom(
                    f"sum(rate(cityops_store_batch_rows_sum{{{INST}}}{RATE}))"
                    f" / sum(rate(cityops_store_batch_rows_count{{{INST}}}{RATE}))",
                    "mean",
                ),
                prom(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(cityops_store_batch_rows_bucket{{{INST}}}{RATE})))",
                    "p99",
                    "B",
                ),
            ],
            width=8,
        ),
        graph(
            "Store insert latency p50 / p99",
            "Duration of one store insert, by backend.",
            [
                prom(
                    "histogram_quantile(0.5, sum by (backend, le) "
                    f"(rate(cityops_store_insert_seconds_bucket{{{INST}}}{RATE})))",
                    "p50 {{backend}}",
                ),
                prom(
                    "histogram_quantile(0.99, sum by (backend, le) "
                    f"(rate(cityops_store_insert_seconds_bucket{{{INST}}}{RATE})))",
                    "p99 {{backend}}",
                    "B",
                ),
            ],
            unit="s",
            width=8,
        ),
        graph(
            "Store failures and retries",
            "Failed inserts and retries per second, by backend. Failures that keep coming "
            "mean the sink is down and offsets are held back.",
            [
                prom(
                    f"sum by (backend) (rate(cityops_store_failures_total{{{INST}}}{RATE}))",
                    "failures {{backend}}",
                ),
                prom(
                    f"sum by (backend) (rate(cityops_store_retries_total{{{INST}}}{RATE}))",
                    "retries {{backend}}",
                    "B",
                ),
            ],
            unit="ops",
            width=8,
        ),
    ]
    return assemble(board, layout)


CLICKHOUSE_SQL = """\
SELECT area_code AS district,
       metric,
       sum(count) AS readings,
       round(sum(sum) / sum(count), 2) AS mean,
       max(max) AS peak,
       sum(breaches) AS breaches
FROM cityops.aggregates FINAL
WHERE level = 'district'
  AND $__timeFilter(window_start)
GROUP BY district, metric
ORDER BY breaches DESC, district, metric
LIMIT 200"""

CLICKHOUSE_BREACHES_SQL = """\
SELECT $__timeInterval(window_start) AS time,
       metric,
       sum(breaches) AS breaches
FROM cityops.aggregates FINAL
WHERE level = 'city'
  AND $__timeFilter(window_start)
GROUP BY time, metric
ORDER BY time"""


def city_operations() -> dash.Dashboard:
    """What is happening in the city: incidents by severity and district, SLA, escalation."""
    board = (
        dash.Dashboard("cityops / City operations")
        .uid("cityops-city-operations")
        .description("Incidents, open workload, SLA breaches and escalations; aggregates.")
        .tags(["cityops", "operations"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("1m")
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(prom_datasource_var())
        .with_variable(
            dash.DatasourceVariable("ds_clickhouse")
            .label("ClickHouse")
            .type("grafana-clickhouse-datasource")
        )
        .with_variable(
            dash.QueryVariable("district")
            .label("District")
            .datasource(PROMETHEUS)
            .query("label_values(cityops_incident_events_total, district)")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            dash.CustomVariable("severity")
            .label("Severity")
            .values("red,orange,yellow,blue")
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    sev_order = [(None, "blue"), (1, "yellow"), (5, "orange"), (20, "red")]
    layout: list[PanelBuilder | dash.Row] = [
        dash.Row("Now"),
        big_number(
            "Open incidents",
            "Incidents not yet resolved or closed.",
            instant(f"sum(cityops_open_incidents{{{CITY}}})"),
            steps=[(None, "green"), (1, "yellow"), (10, "orange"), (50, "red")],
        ),
        big_number(
            "Red incidents open",
            "Open incidents at the highest severity (I, red).",
            instant(
                'sum(cityops_open_incidents{district=~"$district", severity="red"}) or vector(0)'
            ),
            steps=[(None, "green"), (1, "red")],
        ),
        big_number(
            "Opened in range",
            "Incidents opened over the dashboard's time range.",
            instant(
                f'sum(increase(cityops_incident_events_total{{action="open", {CITY}}}[$__range]))'
            ),
            steps=sev_order,
        ),
        big_number(
            "SLA breaches in range",
            "Overdue incidents escalated over the time range.",
            instant('sum(increase(cityops_sla_breaches_total{severity=~"$severity"}[$__range]))'),
            steps=[(None, "green"), (1, "orange"), (10, "red")],
        ),
        dash.Row("Incidents"),
        graph(
            "Incident changes by action",
            "Opened, upgraded, escalated and resolved incidents per minute.",
            [
                prom(
                    "sum by (action) (rate(cityops_incident_events_total{"
                    f'action=~"open|upgrade|escalate|resolve|auto_resolve", {CITY}}}{RATE})) * 60',
                    "{{action}}",
                )
            ],
            unit="short",
        ),
        graph(
            "Incidents opened by severity",
            "New incidents per minute, by severity.",
            [
                prom(
                    "sum by (severity) (rate(cityops_incident_events_total{"
                    f'action="open", {CITY}}}{RATE})) * 60',
                    "{{severity}}",
                )
            ],
            stacked=True,
        ),
        table.Panel()
        .title("Incident changes by district and action (time range)")
        .description("Counts over the dashboard's time range, one row per district and action.")
        .datasource(PROMETHEUS)
        .span(24)
        .height(8)
        .with_target(
            instant(
                "sum by (district, action, severity) "
                f"(increase(cityops_incident_events_total{{{CITY}}}[$__range]))"
            )
        ),
        dash.Row("Open workload"),
        bars(
            "Open incidents by district",
            "Incidents currently open, per district.",
            instant(f"sum by (district) (cityops_open_incidents{{{CITY}}})", "{{district}}"),
        ),
        graph(
            "Open incidents by severity",
            "Open incidents over time, per severity.",
            [
                prom(
                    f"sum by (severity) (cityops_open_incidents{{{CITY}}})",
                    "{{severity}}",
                )
            ],
            stacked=True,
        ),
        dash.Row("SLA and escalation"),
        graph(
            "SLA breaches by severity and level",
            "Overdue incidents escalated per hour, by severity and the level that missed it.",
            [
                prom(
                    "sum by (severity, level) "
                    f'(rate(cityops_sla_breaches_total{{severity=~"$severity"}}{RATE})) * 3600',
                    "{{severity}} @ {{level}}",
                )
            ],
        ),
        bars(
            "Escalations by level (time range)",
            "Escalations over the time range, by the level the incident was escalated to.",
            instant(
                "sum by (level) (increase(cityops_incident_events_total{"
                f'action="escalate", {CITY}}}[$__range]))',
                "{{level}}",
            ),
        ),
        dash.Row("Aggregates (ClickHouse)"),
        table.Panel()
        .title("District aggregates (ClickHouse)")
        .description(
            "Window aggregates stored by the pipeline, per district and metric, over the "
            "time range. Needs a ClickHouse datasource (grafana-clickhouse-datasource)."
        )
        .datasource(CLICKHOUSE)
        .span(14)
        .height(10)
        .with_target(ClickHouseQueryBuilder("A", CLICKHOUSE_SQL)),
        timeseries.Panel()
        .title("Threshold breaches in aggregates (ClickHouse)")
        .description("City-level readings above a rule threshold per interval, by metric.")
        .datasource(CLICKHOUSE)
        .span(10)
        .height(10)
        .with_target(ClickHouseQueryBuilder("A", CLICKHOUSE_BREACHES_SQL, fmt=0)),
    ]
    return assemble(board, layout)


DASHBOARDS: dict[str, Callable[[], dash.Dashboard]] = {
    "pipeline-health.json": pipeline_health,
    "city-operations.json": city_operations,
}


def render(board: dash.Dashboard) -> str:
    """Deterministic JSON text (sorted keys, trailing newline) for a stable diff."""
    return (
        json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard, as the committed files must read."""
    return {name: render(make()) for name, make in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m deploy.grafana.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
