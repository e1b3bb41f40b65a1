"""The benchmark's report turns a results dict into the expected Markdown (no timing)."""

from __future__ import annotations

from bench.report import render_markdown, target_rows

RESULTS = {
    "machine": {"started_at": "2026-11-29T04:00:00+00:00", "cpus": 2, "python": "3.11.7",
                "kafka": "4.4.0"},
    "message_bytes": 147,
    "ceiling": {"producer_msgs_per_s": 233644.9, "consumer_msgs_per_s": 552486.2},
    "passthrough": {"msgs_per_s": 231343.2},
    "faust_floor": {"msgs_per_s": 4626.9},
    "cityops": {"readings_per_s": 61000.0, "ratio_to_passthrough": 61000.0 / 231343.2,
                "processed": 100000, "runs": [64000.0, 61000.0, 58500.0],
                "cpu_us_per_reading": 17.45, "worker_cores": 1.064},
    "gateway": {"readings_per_s": 150000.0, "ratio_to_passthrough": 150000.0 / 231343.2,
                "readings_per_message": 100, "runs": [150000.0]},
    "stages": {"us_per_reading": {"intake": 6.0, "analyze": 10.5, "lifecycle": 2.0},
               "full_city": {"sensors": 100000, "readings": 1000000, "rows": 12147,
                             "us_per_reading": {"intake": 9.5, "analyze": 14.25,
                                                "lifecycle": 0.0}}},
    "scaling": {"one_worker_readings_per_s": 600.0, "two_workers_readings_per_s": 700.0,
                "ratio_to_one_worker": 700.0 / 600.0,
                "runs": {"one_worker": [600.0, 550.0, 610.0],
                         "two_workers": [700.0, 720.0, 650.0]},
                "cpu_us_per_reading": {"one_worker": 46.7, "two_workers": 45.04},
                "worker_cores": {"one_worker": 1.07, "two_workers": 1.514}},
    "latency": {"rate_per_s": 300.0, "samples": 79, "p50_ms": 120.0, "p99_ms": 240.0,
                "max_ms": 260.0,
                "hops_p50_ms": {"intake": 10.0, "analysis": 88.5, "lifecycle": 21.0},
                "hops_of_p99_ms": {"intake": 64, "analysis": 150, "lifecycle": 26}},
    "memory": {"sample_sensors": 400, "sample_rss_mb": 460.5, "generated_sensors": 100000,
               "generated_rss_mb": 812.3, "generated_anon_mb": 590.2, "generated_file_mb": 221.4},
}  # fmt: skip


def test_markdown_table() -> None:
    text = render_markdown(RESULTS)
    assert "2 CPU cores" in text and "Kafka 4.4.0" in text
    lines = text.splitlines()
    start = lines.index("| measurement | value | note |")
    assert lines[start : start + 17] == [
        "| measurement | value | note |",
        "|---|---:|---|",
        "| ceiling: Kafka ProducerPerformance | 233,645 msgs/s | 147 B records, acks=1, Java |",
        "| ceiling: Kafka ConsumerPerformance | 552,486 msgs/s | fetch rate, Java |",
        "| Python floor: aiokafka passthrough | 231,343 msgs/s | getmany -> send_batch, "
        "1 process |",
        "| Faust floor: bare agent, consume only | 4,627 msgs/s | 0.02x of the passthrough; "
        "take_events(5000), 1 process |",
        "| cityops: one worker, one reading a message | 61,000 readings/s | 0.264x of the "
        "passthrough; 100,000 readings; worker CPU 17.4 us a reading (1.06 cores); median "
        "of 3 runs: 64,000 / 61,000 / 58,500 |",
        "| cityops: one worker, gateway messages | 150,000 readings/s | 0.648x of the "
        "passthrough; 100 readings a message |",
        "| pure stages: normalize + detect + aggregate | 16.5 us/reading | no Kafka; lifecycle "
        "2.0 us/reading more |",
        "| pure stages, generated registry | 23.8 us/reading | 100,000 sensors, every one in "
        "turn; 1,000,000 readings |",
        "| cityops: one worker, joined before its input | 600 readings/s | the scaling base: "
        "loaded once the worker is ready; CPU 46.7 us a reading on 1.07 cores (medians); "
        "median of 3 runs: 600 / 550 / 610 |",
        "| cityops: two workers, one group | 700 readings/s | 1.17x of one worker joined the "
        "same way (both ready before their input; 2 cores shared); CPU 45.0 us a reading on "
        "1.51 cores (medians); median of 3 runs: 700 / 720 / 650 |",
        "| latency raw -> street incident, p50 | 120 ms | at 300 readings/s; 79 incidents; hops "
        "(medians): intake 10, analysis 88, lifecycle 21 ms |",
        "| latency raw -> street incident, p99 | 240 ms | max 260 ms; hops (the p99 sample): "
        "intake 64, analysis 150, lifecycle 26 ms |",
        "| worker peak RSS, sample registry | 460 MB | 400 sensors (VmHWM) |",
        "| worker peak RSS, generated registry | 812 MB | 100,000 sensors, spread as the full "
        "city (VmHWM) |",
        "| worker peak anonymous memory, generated registry | 590 MB | RssAnon; 221 MB of file "
        "pages resident then (chDB's library) |",
    ]


def test_targets_and_missing_sections() -> None:
    assert target_rows(RESULTS) == [
        ("one reading a message: >= 20% of the passthrough", "26.4%", "met"),
        ("gateway messages: >= 50% of the passthrough", "64.8%", "met"),
        ("pure stages <= 15 us per reading", "16.5 us", "MISSED"),
        ("two workers >= 1.5x one", "1.17x", "MISSED"),
        ("p99 latency < 250 ms at half the saturated rate", "240 ms", "met"),
        ("worker RSS < 600 MB with 100,000 sensors", "812 MB", "MISSED"),
    ]
    configured = {**RESULTS, "latency_as_configured": {
        "p50_ms": 30380.0, "p99_ms": 32390.0, "allowed_lateness": "30s"}}  # fmt: skip
    assert (
        "| latency as configured, p50 / p99 | 30,380 / 32,390 ms | detection.allowed_lateness=30s |"
        in render_markdown(configured).splitlines()
    )
    empty = render_markdown({})
    assert "| cityops: one worker, one reading a message | not run |" in empty
    assert "| pure stages <= 15 us per reading | n/a | not measured |" in empty
    assert "| worker RSS < 600 MB with 100,000 sensors | n/a | not measured |" in empty
