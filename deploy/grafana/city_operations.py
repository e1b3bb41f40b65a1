"""Dashboard "cityops / City operations": incidents by severity and district, SLA breaches
and escalations (Prometheus), and the stored window aggregates (ClickHouse)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table, timeseries

from deploy.grafana.panels import (
    CITY,
    CLICKHOUSE,
    PROMETHEUS,
    RATE,
    TIME_SERIES_FORMAT,
    PanelBuilder,
    all_of,
    assemble,
    bars,
    big_number,
    clickhouse_datasource_var,
    dashboards_link,
    graph,
    instant,
    new_board,
    prom,
    prom_datasource_var,
    query_variable,
    runbook_link,
    severity_var,
    sql,
    sql_table,
)

TITLE = "cityops / City operations"

#: The districts picked above, as a ClickHouse condition on `area_code`.
SQL_DISTRICTS = "match(area_code, '^${district:regex}$')"

DISTRICT_AGGREGATES_SQL = f"""\
SELECT area_code AS district,
       metric,
       sum(count) AS readings,
       round(sum(sum) / sum(count), 2) AS mean,
       max(max) AS peak,
       sum(breaches) AS breaches
FROM cityops.aggregates FINAL
WHERE level = 'district'
  AND {SQL_DISTRICTS}
  AND $__timeFilter(window_start)
GROUP BY district, metric
ORDER BY breaches DESC, district, metric
LIMIT 200"""  # noqa: S608 - dashboard text built from constants

#: City-wide breaches: the sum of the district rows (the store keeps no city rows; the
#: city is the sum of its districts, as the store's own city roll-up computes it).
BREACHES_SQL = f"""\
SELECT $__timeInterval(window_start) AS time,
       metric,
       sum(breaches) AS breaches
FROM cityops.aggregates FINAL
WHERE level = 'district'
  AND {SQL_DISTRICTS}
  AND $__timeFilter(window_start)
GROUP BY time, metric
ORDER BY time"""  # noqa: S608 - dashboard text built from constants


def city_operations(runbooks: str) -> dash.Dashboard:
    """What is happening in the city: incidents by severity and district, SLA, escalation."""
    district = query_variable(
        "district", "District", PROMETHEUS, "label_values(cityops_incident_events_total, district)"
    )
    board = (
        new_board(
            TITLE,
            uid="cityops-city-operations",
            description="Incidents, open workload, SLA breaches and escalations; aggregates.",
            tags=["operations"],
            runbooks=runbooks,
        )
        .with_variable(prom_datasource_var())
        .with_variable(clickhouse_datasource_var())
        .with_variable(all_of(district))
        .with_variable(severity_var())
        .link(dashboards_link("Incidents, map and streets", "incidents"))
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
        ).links([runbook_link("CityopsSlaBreachesRising", runbooks)]),
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
            "Overdue incidents escalated per hour, by severity and the level that missed the "
            "deadline (the incident now belongs to the level above it).",
            [
                prom(
                    "sum by (severity, level) "
                    f'(rate(cityops_sla_breaches_total{{severity=~"$severity"}}{RATE})) * 3600',
                    "{{severity}} missed at {{level}}",
                )
            ],
        ).links([runbook_link("CityopsRedSlaBreach", runbooks)]),
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
        sql_table(
            "District aggregates (ClickHouse)",
            "Window aggregates stored by the pipeline, per district and metric, over the "
            "time range. Needs a ClickHouse datasource (grafana-clickhouse-datasource).",
            DISTRICT_AGGREGATES_SQL,
            width=14,
        ),
        timeseries.Panel()
        .title("Threshold breaches in aggregates (ClickHouse)")
        .description(
            "Readings above a rule threshold per interval, by metric, summed over the "
            "districts picked (all of them: the whole city)."
        )
        .datasource(CLICKHOUSE)
        .span(10)
        .height(10)
        .with_target(sql(BREACHES_SQL, TIME_SERIES_FORMAT)),
    ]
    return assemble(board, layout)
