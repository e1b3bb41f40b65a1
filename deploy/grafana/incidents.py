"""Dashboard "cityops / Incidents, map and streets": the incidents' current state (list and
map), the grid heat map, and one row per street picked in the `street` variable.

Everything here reads ClickHouse: the incidents table (the newest version of every
incident the worker published, `pipeline/sinks/incidents.py`) and the aggregates table
(street, district and grid rows). Panel by panel in docs/operations.md.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import geomap
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import geomap as geomap_m

from deploy.grafana.panels import (
    CLICKHOUSE,
    TIME_SERIES_FORMAT,
    PanelBuilder,
    all_of,
    assemble,
    big_number,
    clickhouse_datasource_var,
    dashboards_link,
    graph,
    new_board,
    query_variable,
    severity_colours,
    severity_var,
    sql,
    sql_table,
)

TITLE = "cityops / Incidents, map and streets"

#: The incidents the variables pick: open ones always, finished ones when they changed in
#: the time range.
INCIDENT_FILTER = """\
(state NOT IN ('resolved', 'closed') OR $__timeFilter(updated_at))
  AND match(district, '^${district:regex}$')
  AND match(severity, '^${severity:regex}$')
  AND match(state, '^${state:regex}$')"""

#: Red first, then orange, yellow, blue.
SEVERITY_ORDER = "multiIf(severity = 'red', 0, severity = 'orange', 1, severity = 'yellow', 2, 3)"

OPEN_INCIDENTS_SQL = """\
SELECT count() AS open
FROM cityops.incidents FINAL
WHERE state NOT IN ('resolved', 'closed')
  AND match(district, '^${district:regex}$')
  AND match(severity, '^${severity:regex}$')"""

INCIDENT_MAP_SQL = f"""\
SELECT incident_id, severity, state, owner_level, owner_area, subject, lat, lon, updated_at
FROM cityops.incidents FINAL
WHERE lat IS NOT NULL AND lon IS NOT NULL
  AND {INCIDENT_FILTER}
ORDER BY {SEVERITY_ORDER}, updated_at DESC
LIMIT 2000"""  # noqa: S608 - dashboard text built from constants

INCIDENT_TABLE_COLUMNS = """\
SELECT updated_at, incident_id, severity, state, kind,
       if(metric != '', metric, category) AS subject_of, subject,
       owner_level, owner_area, district, street, escalations, last_action,
       ack_due, resolve_due, opened_at
FROM cityops.incidents FINAL"""

INCIDENT_TABLE_SQL = f"""\
{INCIDENT_TABLE_COLUMNS}
WHERE {INCIDENT_FILTER}
ORDER BY {SEVERITY_ORDER}, updated_at DESC
LIMIT 500"""  # noqa: S608 - dashboard text built from constants

#: One row per grid cell (an H3 index in hex) for the metric picked, over the time range,
#: with the cell's centre from ClickHouse's H3 functions. The index is read from its hex
#: text with unhex (stringToH3 throws on any non-H3 text in the column's dictionary), and
#: rows that are no H3 cell are left out. h3ToGeo gives (lat, lon): see the operations
#: docs for a server that still gives (lon, lat).
GRID_SQL = """\
SELECT cell,
       h3ToGeo(h3).1 AS lat,
       h3ToGeo(h3).2 AS lon,
       readings, mean, peak, breaches
FROM
(
    SELECT area_code AS cell,
           any(reinterpretAsUInt64(reverse(unhex(area_code)))) AS h3,
           sum(count) AS readings,
           round(sum(sum) / sum(count), 2) AS mean,
           max(max) AS peak,
           sum(breaches) AS breaches
    FROM cityops.aggregates FINAL
    WHERE level = 'grid'
      AND metric = '${metric}'
      AND $__timeFilter(window_start)
    GROUP BY area_code
)
WHERE h3IsValid(h3)"""

GRID_TABLE_SQL = f"""\
SELECT cell, readings, mean, peak, breaches
FROM ({GRID_SQL})
ORDER BY breaches DESC, mean DESC, cell
LIMIT 500"""  # noqa: S608 - dashboard text built from constants


def _street_series(column: str) -> str:
    return f"""\
SELECT $__timeInterval(window_start) AS time,
       metric,
       {column}
FROM cityops.aggregates FINAL
WHERE level = 'street'
  AND area_code = '${{street}}'
  AND $__timeFilter(window_start)
GROUP BY time, metric
ORDER BY time"""  # noqa: S608 - dashboard text built from constants


STREET_MEAN_SQL = _street_series("round(sum(sum) / sum(count), 2) AS mean")
STREET_BREACHES_SQL = _street_series("sum(breaches) AS breaches")
STREET_INCIDENTS_SQL = f"""\
{INCIDENT_TABLE_COLUMNS}
WHERE street = '${{street}}'
  AND (state NOT IN ('resolved', 'closed') OR $__timeFilter(updated_at))
ORDER BY {SEVERITY_ORDER}, updated_at DESC
LIMIT 200"""  # noqa: S608 - dashboard text built from constants


def _codes_sql(level: str) -> str:
    """The codes of one level that the aggregates or the incidents name, for a variable."""
    return f"""\
SELECT code FROM (
    SELECT DISTINCT area_code AS code FROM cityops.aggregates WHERE level = '{level}'
    UNION DISTINCT
    SELECT DISTINCT {level} AS code FROM cityops.incidents WHERE {level} != ''
)
ORDER BY code"""  # noqa: S608 - dashboard text built from constants


DISTRICTS_SQL = _codes_sql("district")
STREETS_SQL = _codes_sql("street")

GRID_METRICS_SQL = (
    "SELECT DISTINCT metric FROM cityops.aggregates WHERE level = 'grid' ORDER BY metric"
)


def _sql_variable(name: str, label: str, query: str) -> dash.QueryVariable:
    return query_variable(name, label, CLICKHOUSE, query)


def _map(title: str, description: str, query: str, layer: common_b.MapLayerOptions) -> geomap.Panel:
    """A geomap over one ClickHouse query with `lat`/`lon` columns, fitted to the data."""
    return (
        geomap.Panel()
        .title(title)
        .description(description)
        .datasource(CLICKHOUSE)
        .span(12)
        .height(14)
        .view(geomap.MapViewConfig().id("fit").zoom(11))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_scale(True))
        .tooltip(geomap.TooltipOptions().mode(geomap_m.TooltipMode.DETAILS))
        .layers([layer.location(_coordinates()).tooltip(True)])
        .mappings([severity_colours()])
        .with_target(sql(query))
    )


def _coordinates() -> common_b.FrameGeometrySource:
    return (
        common_b.FrameGeometrySource()
        .mode(common.FrameGeometrySourceMode.COORDS)
        .latitude("lat")
        .longitude("lon")
    )


def _incident_markers() -> common_b.MapLayerOptions:
    style = {
        "color": {"field": "severity", "fixed": "dark-green"},
        "opacity": 0.8,
        "size": {"fixed": 8},
        "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
    }
    return (
        common_b.MapLayerOptions()
        .type("markers")
        .name("Incidents")
        .config({"showLegend": True, "style": style})
    )


def _grid_heat() -> common_b.MapLayerOptions:
    weight = {"field": "mean", "fixed": 1, "max": 1, "min": 0}
    return (
        common_b.MapLayerOptions()
        .type("heatmap")
        .name("Mean per cell")
        .config({"blur": 15, "radius": 6, "weight": weight})
    )


def incidents(runbooks: str) -> dash.Dashboard:
    """Where the incidents are and what state they are in; the grid; street by street."""
    board = (
        new_board(
            TITLE,
            uid="cityops-incidents",
            description="Incidents' current state (list and map), grid heat map, per-street views.",
            tags=["incidents"],
            runbooks=runbooks,
        )
        .with_variable(clickhouse_datasource_var())
        .with_variable(all_of(_sql_variable("district", "District", DISTRICTS_SQL)))
        .with_variable(severity_var())
        .with_variable(
            all_of(
                dash.CustomVariable("state")
                .label("State")
                .values("open,dispatched,acknowledged,resolved,closed")
            )
        )
        .with_variable(_sql_variable("metric", "Grid metric", GRID_METRICS_SQL))
        .with_variable(_sql_variable("street", "Streets", STREETS_SQL).multi(True))
        .link(dashboards_link("City operations", "operations"))
    )
    layout: list[PanelBuilder | dash.Row] = [
        dash.Row("Incidents"),
        big_number(
            "Open incidents (store)",
            "Incidents not resolved or closed, from the incidents table.",
            sql(OPEN_INCIDENTS_SQL),
            steps=[(None, "green"), (1, "yellow"), (10, "orange"), (50, "red")],
            datasource=CLICKHOUSE,
            width=4,
        ),
        _map(
            "Incident map",
            "Open incidents, and those that changed in the time range, at their location, "
            "coloured by severity. Incidents without a location are listed only.",
            INCIDENT_MAP_SQL,
            _incident_markers(),
        ).span(20),
        sql_table(
            "Incidents",
            "Current state of every open incident and of those that changed in the time "
            "range: red first, newest first.",
            INCIDENT_TABLE_SQL,
            height=12,
            severity_column=True,
        ),
        dash.Row("Grid ($metric)"),
        _map(
            "Grid heat map",
            "Mean of the metric picked per grid cell (H3) over the time range.",
            GRID_SQL,
            _grid_heat(),
        ),
        sql_table(
            "Grid cells",
            "The same cells as a table: readings, mean, peak and threshold breaches, the "
            "cells with the most breaches first.",
            GRID_TABLE_SQL,
            width=12,
            height=14,
        ),
        dash.Row("Street $street").repeat("street"),
        graph(
            "Mean by metric",
            "Window means in this street, per metric.",
            [sql(STREET_MEAN_SQL, TIME_SERIES_FORMAT)],
            datasource=CLICKHOUSE,
        ),
        graph(
            "Threshold breaches by metric",
            "Readings above a rule threshold in this street, per interval and metric.",
            [sql(STREET_BREACHES_SQL, TIME_SERIES_FORMAT)],
            datasource=CLICKHOUSE,
        ),
        sql_table(
            "Incidents in this street",
            "Open incidents of this street and those that changed in the time range.",
            STREET_INCIDENTS_SQL,
            height=8,
            severity_column=True,
        ),
    ]
    return assemble(board, layout)
