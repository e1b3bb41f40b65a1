"""Dashboard "cityops / Pipeline health": is the worker keeping up, losing data, or stuck
on its sink? Panel by panel in docs/operations.md; each alert's panel links its runbook."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table

from deploy.grafana.panels import (
    INST,
    PROMETHEUS,
    RATE,
    PanelBuilder,
    all_of,
    assemble,
    big_number,
    graph,
    instant,
    new_board,
    prom,
    prom_datasource_var,
    query_variable,
    runbook_link,
)

TITLE = "cityops / Pipeline health"

#: Raw records refused at normalization over raw records consumed. Units' refused updates
#: (stage lifecycle) and refused internal records (stage analyze) are not raw input.
DEAD_LETTER_RATIO = (
    f'(sum(rate(cityops_dead_letters_total{{stage="normalize", {INST}}}{RATE})) or vector(0))'
    f" / clamp_min(sum(rate(cityops_events_in_total{{{INST}}}{RATE})), 1e-9)"
)


def instance_var() -> dash.QueryVariable:
    query = "label_values(cityops_worker_info, instance)"
    return all_of(query_variable("instance", "Worker", PROMETHEUS, query))


def pipeline_health(runbooks: str) -> dash.Dashboard:
    """Is the worker keeping up, losing data, or stuck on its sink? (`runbooks`: the
    absolute URL of docs/operations.md)"""
    board = (
        new_board(
            TITLE,
            uid="cityops-pipeline-health",
            description="Throughput, consumer lag, dead letters, latency and the store sink.",
            tags=["pipeline"],
            runbooks=runbooks,
            since="now-1h",
            refresh="30s",
            timezone="utc",
        )
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
        ).links([runbook_link("CityopsWorkerDown", runbooks)]),
        big_number(
            "Events in /s",
            "Raw records consumed per second, all topic kinds.",
            instant(f"sum(rate(cityops_events_in_total{{{INST}}}{RATE}))"),
            unit="ops",
        ).links([runbook_link("CityopsNoEventsFlowing", runbooks)]),
        big_number(
            "Consumer lag (messages)",
            "Messages on the input partitions not yet committed by this consumer group.",
            instant(
                f"sum(faust_topic_partition_end_offset{{{INST}}}"
                f" - faust_topic_partition_offset_commited{{{INST}}})"
            ),
            steps=[(None, "green"), (1000, "orange"), (10000, "red")],
        ).links([runbook_link("CityopsConsumerLagGrowing", runbooks)]),
        big_number(
            "Dead-letter ratio (raw input)",
            "Raw records refused at normalization divided by raw records consumed. Units' "
            "refused updates are not raw input: see Refused unit updates.",
            instant(DEAD_LETTER_RATIO),
            unit="percentunit",
            steps=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ).links([runbook_link("CityopsDeadLetterRatioHigh", runbooks)]),
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
            "Dead-letter ratio (raw input)",
            "Share of consumed raw records that normalization dead-lettered.",
            [prom(DEAD_LETTER_RATIO, "ratio")],
            unit="percentunit",
        ).links([runbook_link("CityopsDeadLetterRatioHigh", runbooks)]),
        graph(
            "Dead letters by stage",
            "Records dead-lettered per second by the stage that refused them: normalize "
            "(raw input), analyze (a foreign record on an internal topic), lifecycle (a "
            "unit's update, or a detection event, refused).",
            [
                prom(
                    f"sum by (stage) (rate(cityops_dead_letters_total{{{INST}}}{RATE}))",
                    "{{stage}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Refused unit updates",
            "Handling units' updates the lifecycle refused per second, by reason "
            "(unknown_incident, invalid_transition, unit_outside_area, schema_violation...).",
            [
                prom(
                    "sum by (reason) (rate(cityops_dead_letters_total{"
                    f'stage="lifecycle", {INST}}}{RATE}))',
                    "{{reason}}",
                )
            ],
            unit="ops",
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
        ).links([runbook_link("CityopsStoreFailing", runbooks)]),
    ]
    return assemble(board, layout)
