"""Turn a results dict into the Markdown table of bench/results/latest.md (and write both).

Why separate: the rendering is pure, so a unit test can check it without a broker, and a
results JSON from another machine renders the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def _rate(value: float | None, unit: str) -> str:
    return "not run" if value is None else f"{value:,.0f} {unit}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}x"


def _mb(value: float | None) -> str:
    return "not run" if value is None else f"{value:,.0f} MB"


def table_rows(results: Results) -> list[tuple[str, str, str]]:
    """(measurement, value, note) rows in the order the report shows them."""
    ceiling = results.get("ceiling") or {}
    passthrough = results.get("passthrough") or {}
    cityops = results.get("cityops") or {}
    gateway = results.get("gateway") or {}
    faust = results.get("faust_floor") or {}
    stages = (results.get("stages") or {}).get("us_per_reading") or {}
    city_stages = (results.get("stages") or {}).get("full_city") or {}
    city = city_stages.get("us_per_reading") or {}
    scaling = results.get("scaling") or {}
    runs = scaling.get("runs") or {}
    latency = results.get("latency") or {}
    memory = results.get("memory") or {}
    size = results.get("message_bytes")
    floor = passthrough.get("msgs_per_s")
    faust_rate = faust.get("msgs_per_s")
    rows = [
        (
            "ceiling: Kafka ProducerPerformance",
            _rate(ceiling.get("producer_msgs_per_s"), "msgs/s"),
            f"{size} B records, acks=1, Java",
        ),
        (
            "ceiling: Kafka ConsumerPerformance",
            _rate(ceiling.get("consumer_msgs_per_s"), "msgs/s"),
            "fetch rate, Java",
        ),
        (
            "Python floor: aiokafka passthrough",
            _rate(floor, "msgs/s"),
            "getmany -> send_batch, 1 process",
        ),
        (
            "Faust floor: bare agent, consume only",
            _rate(faust_rate, "msgs/s"),
            f"{_ratio(None if not (faust_rate and floor) else faust_rate / floor)} of the "
            "passthrough; take_events(5000), 1 process",
        ),
        (
            "cityops: one worker, one reading a message",
            _rate(cityops.get("readings_per_s"), "readings/s"),
            f"{_ratio(cityops.get('ratio_to_passthrough'))} of the passthrough; "
            f"{cityops.get('processed', 0):,} readings"
            + _cpu_note(cityops)
            + _median_note(cityops),
        ),
        (
            "cityops: one worker, gateway messages",
            _rate(gateway.get("readings_per_s"), "readings/s"),
            f"{_ratio(gateway.get('ratio_to_passthrough'))} of the passthrough; "
            f"{gateway.get('readings_per_message', '?')} readings a message"
            + _cpu_note(gateway)
            + _median_note(gateway),
        ),
        (
            "pure stages: normalize + detect + aggregate",
            "not run" if not stages else f"{stages['intake'] + stages['analyze']:.1f} us/reading",
            "no Kafka; lifecycle "
            + ("?" if not stages else f"{stages['lifecycle']:.1f}")
            + " us/reading more",
        ),
        (
            "pure stages, generated registry",
            "not run" if not city else f"{city['intake'] + city['analyze']:.1f} us/reading",
            f"{city_stages.get('sensors', 0):,} sensors, every one in turn; "
            f"{city_stages.get('readings', 0):,} readings",
        ),
        (
            "cityops: one worker, joined before its input",
            _rate(scaling.get("one_worker_readings_per_s"), "readings/s"),
            "the scaling base: loaded once the worker is ready"
            + _scaling_cpu_note(scaling, "one_worker")
            + "; median of "
            + _runs(runs.get("one_worker")),
        ),
        (
            "cityops: two workers, one group",
            _rate(scaling.get("two_workers_readings_per_s"), "readings/s"),
            f"{_ratio(scaling.get('ratio_to_one_worker'))} of one worker joined the same way "
            f"(both ready before their input; 2 cores shared)"
            + _scaling_cpu_note(scaling, "two_workers")
            + "; median of "
            + _runs(runs.get("two_workers")),
        ),
        (
            "latency raw -> street incident, p50",
            "not run" if latency.get("p50_ms") is None else f"{latency['p50_ms']:,.0f} ms",
            f"at {_rate(latency.get('rate_per_s'), 'readings/s')}; "
            f"{latency.get('samples', 0)} incidents"
            + _hops_note(latency, "hops_p50_ms", "medians"),
        ),
        (
            "latency raw -> street incident, p99",
            "not run" if latency.get("p99_ms") is None else f"{latency['p99_ms']:,.0f} ms",
            f"max {latency.get('max_ms', 0):,.0f} ms"
            + _hops_note(latency, "hops_of_p99_ms", "the p99 sample"),
        ),
        (
            "worker peak RSS, sample registry",
            _mb(memory.get("sample_rss_mb")),
            f"{memory.get('sample_sensors', 0):,} sensors (VmHWM)",
        ),
        (
            "worker peak RSS, generated registry",
            _mb(memory.get("generated_rss_mb")),
            f"{memory.get('generated_sensors', 0):,} sensors, spread as the full city (VmHWM)",
        ),
        (
            "worker peak anonymous memory, generated registry",
            _mb(memory.get("generated_anon_mb")),
            f"RssAnon; {_mb(memory.get('generated_file_mb'))} of file pages resident then "
            "(chDB's library)",
        ),
    ]
    configured = results.get("latency_as_configured") or {}
    if configured and configured.get("p99_ms") is None:
        rows.append(
            (
                "latency as configured",
                f"no incident within {configured.get('seconds', 0):.0f} s",
                f"detection waits allowed_lateness={configured.get('allowed_lateness', '?')} "
                "of event time",
            )
        )
    elif configured:
        rows.append(
            (
                "latency as configured, p50 / p99",
                f"{configured['p50_ms']:,.0f} / {configured['p99_ms']:,.0f} ms",
                f"detection.allowed_lateness={configured.get('allowed_lateness', '?')}",
            )
        )
    return rows


def _runs(rates: list[float] | None) -> str:
    """`3 runs: 15,827 / 17,936 / 10,608`, in the order they ran."""
    if not rates:
        return "no run"
    return f"{len(rates)} runs: " + " / ".join(f"{rate:,.0f}" for rate in rates)


def _cpu_note(run: dict[str, Any]) -> str:
    """`; worker CPU 47.0 us a reading (1.07 cores)` when the run measured it."""
    per_reading, cores = run.get("cpu_us_per_reading"), run.get("worker_cores")
    if per_reading is None or cores is None:
        return ""
    return f"; worker CPU {per_reading:.1f} us a reading ({cores:.2f} cores)"


def _scaling_cpu_note(scaling: dict[str, Any], which: str) -> str:
    """The scaling runs' median CPU a reading and cores busy (all the workers together)."""
    per_reading = (scaling.get("cpu_us_per_reading") or {}).get(which)
    cores = (scaling.get("worker_cores") or {}).get(which)
    if per_reading is None or cores is None:
        return ""
    return f"; CPU {per_reading:.1f} us a reading on {cores:.2f} cores (medians)"


def _hops_note(latency: dict[str, Any], key: str, what: str) -> str:
    """`; hops (medians): intake 10, analysis 40, lifecycle 22 ms` when measured."""
    hops = latency.get(key)
    if not hops:
        return ""
    return (
        f"; hops ({what}): intake {hops['intake']:,.0f}, analysis {hops['analysis']:,.0f}, "
        f"lifecycle {hops['lifecycle']:,.0f} ms"
    )


def _median_note(run: dict[str, Any]) -> str:
    """`; median of 3 runs: ...` when the figure is the median of several runs."""
    rates = run.get("runs")
    return f"; median of {_runs(rates)}" if rates and len(rates) > 1 else ""


def target_rows(results: Results) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the targets of the batch data plane."""
    cityops = results.get("cityops") or {}
    gateway = results.get("gateway") or {}
    stages = (results.get("stages") or {}).get("us_per_reading") or {}
    scaling = results.get("scaling") or {}
    latency = results.get("latency") or {}
    memory = results.get("memory") or {}
    ratio = cityops.get("ratio_to_passthrough")
    batched = gateway.get("ratio_to_passthrough")
    pure = None if not stages else stages["intake"] + stages["analyze"]
    two = scaling.get("ratio_to_one_worker")
    p99 = latency.get("p99_ms")
    rss = memory.get("generated_rss_mb")

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "MISSED")

    return [
        (
            "one reading a message: >= 20% of the passthrough",
            "n/a" if ratio is None else f"{ratio:.1%}",
            verdict(None if ratio is None else ratio >= 0.2),
        ),
        (
            "gateway messages: >= 50% of the passthrough",
            "n/a" if batched is None else f"{batched:.1%}",
            verdict(None if batched is None else batched >= 0.5),
        ),
        (
            "pure stages <= 15 us per reading",
            "n/a" if pure is None else f"{pure:.1f} us",
            verdict(None if pure is None else pure <= 15.0),
        ),
        (
            "two workers >= 1.5x one",
            "n/a" if two is None else f"{two:.2f}x",
            verdict(None if two is None else two >= 1.5),
        ),
        (
            "p99 latency < 250 ms at half the saturated rate",
            "n/a" if p99 is None else f"{p99:,.0f} ms",
            verdict(None if p99 is None else p99 < 250),
        ),
        (
            "worker RSS < 600 MB with 100,000 sensors",
            "n/a" if rss is None else f"{rss:,.0f} MB",
            verdict(None if rss is None else rss < 600),
        ),
    ]


def _table(header: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> list[str]:
    lines = [f"| {' | '.join(header)} |", "|---|---:|---|"]
    lines.extend(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return lines


def render_markdown(results: Results) -> str:
    """The report: a machine line, the measurements and the targets, as Markdown."""
    machine = results.get("machine") or {}
    lines = [
        "# cityops benchmark",
        "",
        f"{machine.get('started_at', '?')}: {machine.get('cpus', '?')} CPU cores shared by "
        f"the broker, the load generator and the workers; Python {machine.get('python', '?')}, "
        f"Kafka {machine.get('kafka', '?')}. Compare ratios within one run, not absolute "
        "numbers across machines.",
        "",
        *_table(("measurement", "value", "note"), table_rows(results)),
        "",
        *_table(("target", "measured", "verdict"), target_rows(results)),
        "",
    ]
    return "\n".join(lines)


def write(results: Results, directory: Path) -> tuple[Path, Path]:
    """Write latest.json and latest.md into ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    as_json = directory / "latest.json"
    as_md = directory / "latest.md"
    as_json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    as_md.write_text(render_markdown(results))
    return as_json, as_md
