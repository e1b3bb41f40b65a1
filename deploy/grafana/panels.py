"""The building blocks every cityops dashboard shares: datasources, targets, panel shapes.

Built on grafana-foundation-sdk's typed builders; the SDK has no target for the
grafana-clickhouse-datasource plugin, so `ClickHouseQuery` is one here. Datasources are
template variables (`ds_prometheus`, `ds_clickhouse`) so the same JSON works with
whatever uid a Grafana instance gives its datasources.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as prom_m

from deploy.runbooks import runbook_url

PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid="${ds_prometheus}")
CLICKHOUSE = dm.DataSourceRef(type_val="grafana-clickhouse-datasource", uid="${ds_clickhouse}")

#: Selector shared by every pipeline-health query: the worker instances picked above.
INST = 'instance=~"$instance"'
#: Selector shared by the city-operations incident queries.
CITY = 'district=~"$district", severity=~"$severity"'
RATE = "[$__rate_interval]"

#: grafana-clickhouse-datasource result formats.
TABLE_FORMAT, TIME_SERIES_FORMAT = 1, 0

#: The four-colour warning scale, as Grafana colours.
SEVERITY_COLOURS = {"red": "red", "orange": "orange", "yellow": "yellow", "blue": "blue"}

PanelBuilder = cogbuilder.Builder[dm.Panel]


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL target for the grafana-clickhouse-datasource plugin (the SDK has none)."""

    def __init__(self, ref_id: str, sql: str, fmt: int = TABLE_FORMAT) -> None:
        self.ref_id = ref_id
        self.sql = sql
        self.fmt = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": self.fmt,
            "queryType": "table" if self.fmt == TABLE_FORMAT else "timeseries",
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builder wrapper so a ClickHouse target plugs into the SDK's `with_target`."""

    def __init__(self, ref_id: str, sql: str, fmt: int = TABLE_FORMAT) -> None:
        self._query = ClickHouseQuery(ref_id, sql, fmt)

    def build(self) -> ClickHouseQuery:
        return self._query


def sql(text: str, fmt: int = TABLE_FORMAT, ref_id: str = "A") -> ClickHouseQueryBuilder:
    """One ClickHouse target."""
    return ClickHouseQueryBuilder(ref_id, text, fmt)


def _prom_target(expr: str, legend: str, ref_id: str) -> prom_b.Dataquery:
    return prom_b.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(PROMETHEUS)


def prom(expr: str, legend: str = "__auto", ref_id: str = "A") -> prom_b.Dataquery:
    """One Prometheus target on the dashboard's Prometheus datasource variable."""
    return _prom_target(expr, legend, ref_id).range()


def instant(expr: str, legend: str = "__auto", ref_id: str = "A") -> prom_b.Dataquery:
    """An instant Prometheus target, for stats, bar gauges and tables."""
    return _prom_target(expr, legend, ref_id).instant().format(prom_m.PromQueryFormat.TABLE)


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
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    unit: str = "short",
    width: int = 12,
    stacked: bool = False,
    datasource: dm.DataSourceRef = PROMETHEUS,
) -> timeseries.Panel:
    """A time-series panel; `stacked` for parts of a whole (per kind, per district)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
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
    target: cogbuilder.Builder[cogvariants.Dataquery],
    *,
    unit: str = "short",
    width: int = 6,
    steps: Sequence[tuple[float | None, str]] | None = None,
    datasource: dm.DataSourceRef = PROMETHEUS,
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
        .datasource(datasource)
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


def sql_table(
    title: str,
    description: str,
    query: str,
    *,
    width: int = 24,
    height: int = 10,
    severity_column: bool = False,
) -> table.Panel:
    """A table over one ClickHouse query; with `severity_column`, that column is coloured
    by its value."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(CLICKHOUSE)
        .span(width)
        .height(height)
        .with_target(sql(query))
    )
    if severity_column:
        background = {"type": "color-background"}
        panel = panel.mappings([severity_colours()]).override_by_name(
            "severity", [dm.DynamicConfigValue(id_val="custom.cellOptions", value=background)]
        )
    return panel


def severity_colours() -> dm.ValueMap:
    """Each severity shown in its own colour."""
    return dm.ValueMap(
        options={
            name: dm.ValueMappingResult(color=colour, index=i)
            for i, (name, colour) in enumerate(SEVERITY_COLOURS.items())
        }
    )


def runbook_link(section: str, base: str, title: str = "Runbook") -> dash.DashboardLink:
    """A link to a runbook section (an alert's, or a dashboard's), opened in a new tab."""
    return (
        dash.DashboardLink(title)
        .type(dm.DashboardLinkType.LINK)
        .url(runbook_url(section, base))
        .icon("doc")
        .target_blank(True)
    )


def new_board(
    title: str,
    *,
    uid: str,
    description: str,
    tags: Sequence[str],
    runbooks: str,
    since: str = "now-6h",
    refresh: str = "1m",
    timezone: str = "browser",
) -> dash.Dashboard:
    """A cityops dashboard: tagged, editable, crosshair tooltips, and a link to its own
    section of the runbook (`runbooks`: the absolute URL of docs/operations.md)."""
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["cityops", *tags])
        .timezone(timezone)
        .time(since, "now")
        .refresh(refresh)
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(runbook_link(f'Dashboard "{title}"', runbooks, "Runbook: this dashboard"))
    )


def query_variable(
    name: str, label: str, datasource: dm.DataSourceRef, query: str
) -> dash.QueryVariable:
    """A variable whose values a query gives, refreshed with the time range, sorted."""
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(datasource)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def severity_var() -> dash.CustomVariable:
    """The four severities, All by default (the regex `.*`)."""
    return all_of(
        dash.CustomVariable("severity").label("Severity").values("red,orange,yellow,blue")
    )


def dashboards_link(title: str, tag: str) -> dash.DashboardLink:
    """A link to the dashboards tagged `tag`, keeping the time range."""
    return (
        dash.DashboardLink(title).type(dm.DashboardLinkType.DASHBOARDS).tags([tag]).keep_time(True)
    )


def prom_datasource_var() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("ds_prometheus").label("Prometheus").type("prometheus")


def clickhouse_datasource_var() -> dash.DatasourceVariable:
    return (
        dash.DatasourceVariable("ds_clickhouse")
        .label("ClickHouse")
        .type("grafana-clickhouse-datasource")
    )


_Variable = TypeVar("_Variable", dash.QueryVariable, dash.CustomVariable)


def all_of(variable: _Variable) -> _Variable:
    """A multi-value variable whose "All" is the regex `.*` (queries match with it)."""
    return variable.multi(True).include_all(True).all_value(".*")


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
