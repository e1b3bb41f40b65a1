"""The benchmark's report turns a results dict into the expected Markdown (no timing)."""

from __future__ import annotations

from bench.report import render_markdown, target_rows

RESULTS = {
    "machine": {"started_at": "2026-11-29T04:00:00+00:00", "cpus": 2, "python": "3.11.7",
                "kafka": "4.4.0"},
    "message_bytes": 147,
    "ceiling": {"producer_msgs_per_s": 233644.9, "consumer_msgs_per_s": 552486.2},
    "passthrough": {"msgs_per_s": 231343.2},
    "cityops": {"readings_per_s": 610.0, "ratio_to_passthrough": 610.0 / 231343.2,
                "processed": 21501},
    "scaling": {"two_workers_readings_per_s": 700.0, "ratio_to_one_worker": 700.0 / 610.0},
    "latency": {"rate_per_s": 300.0, "samples": 79, "p50_ms": 120.0, "p99_ms": 240.0,
                "max_ms": 260.0},
    "memory": {"sample_sensors": 400, "sample_rss_mb": 460.5, "generated_sensors": 100000,
               "generated_rss_mb": 812.3},
}  # fmt: skip


def test_markdown_table() -> None:
    text = render_markdown(RESULTS)
    assert "2 CPU cores" in text and "Kafka 4.4.0" in text
    lines = text.splitlines()
    start = lines.index("| measurement | value | note |")
    assert lines[start : start + 11] == [
        "| measurement | value | note |",
        "|---|---:|---|",
        "| ceiling: Kafka ProducerPerformance | 233,645 msgs/s | 147 B records, acks=1, Java |",
        "| ceiling: Kafka ConsumerPerformance | 552,486 msgs/s | fetch rate, Java |",
        "| Python floor: aiokafka passthrough | 231,343 msgs/s | getmany -> send_batch, "
        "1 process |",
        "| cityops: one worker, saturated | 610 readings/s | 0.00264x of the passthrough; "
        "21,501 readings |",
        "| cityops: two workers, one group | 700 readings/s | 1.15x of one worker "
        "(2 cores shared) |",
        "| latency raw -> street incident, p50 | 120 ms | at 300 readings/s; 79 incidents |",
        "| latency raw -> street incident, p99 | 240 ms | max 260 ms |",
        "| worker peak RSS, sample registry | 460 MB | 400 sensors (VmHWM) |",
        "| worker peak RSS, generated registry | 812 MB | 100,000 sensors (VmHWM) |",
    ]


def test_targets_and_missing_sections() -> None:
    assert target_rows(RESULTS) == [
        ("cityops >= 50% of the passthrough", "0.3%", "MISSED"),
        ("p99 latency < 250 ms at half the saturated rate", "240 ms", "met"),
        ("worker RSS < 600 MB with 100,000 sensors", "812 MB", "MISSED"),
    ]
    configured = {**RESULTS, "latency_as_configured": {
        "p50_ms": 30380.0, "p99_ms": 32390.0, "allowed_lateness": "30s"}}  # fmt: skip
    assert render_markdown(configured).splitlines()[-7] == (
        "| latency as configured, p50 / p99 | 30,380 / 32,390 ms | detection.allowed_lateness=30s |"
    )
    empty = render_markdown({})
    assert "| cityops: one worker, saturated | not run |" in empty
    assert "| worker RSS < 600 MB with 100,000 sensors | n/a | not measured |" in empty
