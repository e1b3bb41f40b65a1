"""``cityops simulate``: feed a topology's raw topics with simulated city traffic.

Why: developing, demonstrating and benchmarking the pipeline needs a city; this one is
deterministic for a seed (with ``--start`` fixed, the same bytes every run), so a run can
be replayed exactly. See :mod:`pipeline.sim.simulator` for what is simulated.

Time: ``--rate`` events per wall second for ``--duration`` of wall time; simulated time
runs ``--speedup`` times faster, so the stream covers ``[start, start + duration *
speedup)`` and each sensor reports every ``readings_per_round / rate * speedup`` simulated
seconds. Against Kafka a run that falls behind stops at 1.1 x duration + 1 s of wall
time: it then produced a prefix of that stream, and says so. ``--catch-up`` with a
``--start`` in the past runs at ``--speedup`` only until simulated time meets the wall
clock, then at real time: a live raw topic dead-letters a reading stamped more than
``event_time.max_clock_skew`` after its arrival, so a run ahead of the clock loses them.

``--output FILE`` writes the same stream to a JSON Lines file instead, one record per
line: ``{"topic": ..., "key": ..., "value": {...the event...}}``; a ``"fault"`` field
names injected nonsense, and a broken-JSON fault carries its bytes as ``"value_text"``
(a string) instead of ``"value"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from aiokafka.errors import KafkaError

from pipeline.cli.common import (
    EXIT_RUNTIME,
    TopologyOption,
    console,
    err_console,
    fail,
    make_settings,
    open_topology,
    quiet_kafka_logs,
)
from pipeline.cli.progress import Bar
from pipeline.kafka.admin import list_topics
from pipeline.kafka.producer import ProduceError, ProduceStats, produce
from pipeline.settings import Settings
from pipeline.sim.encoders import FORMATS, mix_formats
from pipeline.sim.simulator import SimEvent, Simulator
from pipeline.topology.durations import parse_duration

__all__ = [
    "MAX_RATE",
    "MAX_SPEEDUP",
    "Phase",
    "jsonl_line",
    "nothing_to_catch_up",
    "planned_events",
    "simulate_command",
    "time_phases",
]

#: One stretch of the stream: simulated start, speedup, simulated end (None: no end).
Phase = tuple[datetime, float, datetime | None]

#: the largest --speedup: a simulated year in about 32 wall seconds
MAX_SPEEDUP = 1_000_000.0
#: the largest --rate, events per wall second (far above what one producer sends)
MAX_RATE = 10_000_000.0


def _parse_duration(text: str) -> timedelta | None:
    if text.strip().lower() == "forever":
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"--duration: {exc}")


def _parse_start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--start: not an ISO 8601 time: {text!r}")
    if moment.tzinfo is None:
        fail(f"--start: needs a UTC offset, e.g. {text}+00:00 or {text}Z")
    return moment.astimezone(UTC)


def simulate_command(
    topology: TopologyOption,
    rate: Annotated[float, typer.Option(help="Target events per wall second.")] = 200.0,
    duration: Annotated[
        str, typer.Option(help="Wall time to run: 30s, 5m, 1h or 'forever'.")
    ] = "forever",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same stream.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option(help="Write JSON Lines to this file instead of producing to Kafka."),
    ] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: CITYOPS_KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
    speedup: Annotated[
        float, typer.Option(help="Simulated seconds per wall second (e.g. 60: an hour a minute).")
    ] = 1.0,
    fault_rate: Annotated[
        float, typer.Option(help="Share of readings replaced by nonsense, 0..1.")
    ] = 0.01,
    reports_per_minute: Annotated[
        float, typer.Option(help="Citizen reports per simulated minute.")
    ] = 2.0,
    episodes_per_hour: Annotated[
        float, typer.Option(help="Random problems (pollution, burst mains, noise, jams) per hour.")
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start, ISO 8601 with offset (default: now). Fix it for "
            "byte-identical runs."
        ),
    ] = None,
    locations: Annotated[
        bool, typer.Option(help="Put the sensor's lat/lon into every reading.")
    ] = False,
    catch_up: Annotated[
        bool,
        typer.Option(
            help="With --start in the past: run at --speedup until simulated time meets the "
            "wall clock, then at real time (a live topic refuses readings from the future)."
        ),
    ] = False,
    formats: Annotated[
        str,
        typer.Option(
            help="Comma-separated input formats to mix (each valid event picks one): "
            f"{', '.join(FORMATS)}."
        ),
    ] = "canonical",
) -> None:
    """Simulate sensor readings and citizen reports into the raw topics (or a file)."""
    checks = (
        (0 < rate <= MAX_RATE, f"--rate must be positive and at most {MAX_RATE:g}"),
        (0 < speedup <= MAX_SPEEDUP, f"--speedup must be positive and at most {MAX_SPEEDUP:g}"),
        (0.0 <= fault_rate <= 1.0, "--fault-rate must be between 0 and 1"),
        (0 <= reports_per_minute <= 1e6, "--reports-per-minute must be between 0 and 1e6"),
        (0 <= episodes_per_hour <= 1e6, "--episodes-per-hour must be between 0 and 1e6"),
    )
    for ok, message in checks:
        if not ok:
            fail(message)
    chosen = [name.strip() for name in formats.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if not chosen or unknown:
        fail(f"--formats: unknown {unknown or 'empty list'}; known: {', '.join(FORMATS)}")
    wall = _parse_duration(duration)
    begin = _parse_start(start)
    if output is not None and wall is None:
        fail("--output needs a finite --duration")
    settings = make_settings(kafka_bootstrap_servers=bootstrap)
    topo = open_topology(topology, settings)
    now = datetime.now(UTC)
    try:
        phases = time_phases(begin, wall, speedup, catch_up=catch_up, now=now)
    except OverflowError:
        fail("--duration x --speedup reaches past the year 9999")
    if catch_up and (note := nothing_to_catch_up(begin, speedup, now)) is not None:
        err_console.print(f"[bold yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    try:
        sims = [
            Simulator.for_rate(
                topo,
                rate=rate,
                speedup=phase_speedup,
                seed=seed + index,
                start=phase_start,
                fault_rate=fault_rate,
                reports_per_minute=reports_per_minute,
                episodes_per_hour=episodes_per_hour,
                include_location=locations,
            )
            for index, (phase_start, phase_speedup, _) in enumerate(phases)
        ]
    except (ValueError, OverflowError) as exc:
        fail(str(exc))
    planned: int | None = None
    if all(end is not None for _, _, end in phases):
        planned = sum(
            planned_events(sim, end - first, reports_per_minute)
            for sim, (first, _, end) in zip(sims, phases, strict=True)
            if end is not None
        )
    sim = sims[0]
    console.print(
        f"simulating {topo.id}: {len(topo.sensors)} sensors, {sim.readings_per_round} readings "
        f"every {sim.interval.total_seconds():.3g} s simulated, from {begin.isoformat()} "
        f"(seed {seed}, speedup {speedup:g})"
        + (f"; at real time from {phases[1][0].isoformat()}" if len(phases) > 1 else ""),
        highlight=False,
    )
    events = itertools.chain.from_iterable(
        one.events(end) for one, (_, _, end) in zip(sims, phases, strict=True)
    )
    stream = mix_formats(events, topo, chosen, seed=seed)
    if output is not None:
        _to_file(sims, stream, output, planned)
    else:
        _to_kafka(sims, stream, settings, rate, wall, planned)


def time_phases(
    begin: datetime, wall: timedelta | None, speedup: float, *, catch_up: bool, now: datetime
) -> list[Phase]:
    """The stream's stretches of simulated time for ``wall`` of wall time (None: forever).

    One stretch at ``speedup`` unless ``catch_up`` and ``begin`` lies before ``now``: then
    simulated time meets the wall clock after ``(now - begin) / (speedup - 1)`` of wall
    time, and a second stretch goes on from there at real time.
    """
    whole: Phase = (begin, speedup, None if wall is None else begin + wall * speedup)
    if not catch_up or speedup <= 1 or begin >= now:
        return [whole]
    ahead = (now - begin) / (speedup - 1)
    if wall is not None and wall <= ahead:
        return [whole]
    meet = begin + ahead * speedup
    return [(begin, speedup, meet), (meet, 1.0, None if wall is None else meet + wall - ahead)]


def nothing_to_catch_up(begin: datetime, speedup: float, now: datetime) -> str | None:
    """Why ``--catch-up`` cannot do what it is for here (None: it can): the simulated
    start is not behind the clock (by more than the second a default start, "now", is
    behind by the time it is checked), or the run is not faster than it."""
    if begin >= now - timedelta(seconds=1):
        ahead = "" if speedup <= 1 else (
            f"; at {speedup:g}x it runs ahead of the clock, and a worker dead-letters "
            "readings stamped more than 5 minutes after their arrival (clock_skew)"
        )  # fmt: skip
        start = begin.isoformat()
        return f"--catch-up: --start {start} is not in the past, nothing to catch up{ahead}"
    if speedup <= 1:
        return f"--catch-up: at --speedup {speedup:g} simulated time never meets the clock"
    return None


def planned_events(sim: Simulator, span: timedelta, reports_per_minute: float) -> int:
    """How many events a run over ``span`` of simulated time should give: every reading of
    each whole or partial round, and the reports expected at their mean rate (they arrive
    at random, so the bar's total is an estimate that the count may pass)."""
    rounds = span / sim.interval
    readings = math.floor(rounds) * sim.readings_per_round
    readings += math.ceil((rounds - math.floor(rounds)) * sim.readings_per_round)
    reports = (
        reports_per_minute * span.total_seconds() / 60 if sim.topology.report_categories else 0
    )
    return readings + round(reports)


def _to_file(
    sims: Sequence[Simulator], stream: Iterator[SimEvent], output: Path, planned: int | None
) -> None:
    count = 0
    try:
        with Bar("events", planned, refresh=5000) as bar, output.open("wb") as out:
            for count, event in enumerate(stream, start=1):  # noqa: B007
                out.write(jsonl_line(event))
                bar.update(count)
    except OSError as exc:
        fail(f"{output}: {exc.strerror or exc}", EXIT_RUNTIME)
    _summary(sims, count, None)
    console.print(f"wrote {count} events to {output}", highlight=False)


def jsonl_line(event: SimEvent) -> bytes:
    """One event as a JSON Lines record (see the module docstring)."""
    record: dict[str, object] = {"topic": event.topic, "key": event.key.decode()}
    if event.fault == "broken_json":
        record["value_text"] = event.value.decode("utf-8", "replace")
    else:
        record["value"] = orjson.Fragment(event.value)
    if event.fault is not None:
        record["fault"] = event.fault
    return orjson.dumps(record) + b"\n"


def _to_kafka(
    sims: Sequence[Simulator],
    stream: Iterator[SimEvent],
    settings: Settings,
    rate: float,
    wall: timedelta | None,
    planned: int | None,
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    sim = sims[0]
    bar = Bar("events", planned)
    quiet_kafka_logs()

    def show(stats: ProduceStats) -> None:
        bar.update(stats.acked, rate=f"{stats.rate:,.0f}/s")

    async def run() -> ProduceStats:
        present = await list_topics(settings, sim.topology.topics.prefix)
        missing = [t for t in (sim.sensor_topic, sim.report_topic) if t not in present]
        if missing:
            msg = (
                f"topic {missing[0]} does not exist on {bootstrap}: run `cityops topics create "
                "--topology ...` first"
            )
            raise ProduceError(msg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await produce(
            stream,
            bootstrap=settings,
            rate=rate,
            duration=None if wall is None else _cutoff(wall),
            progress=show,
            stop=stop,
        )

    try:
        with bar:
            stats = asyncio.run(run())
    except ProduceError as exc:
        fail(str(exc), EXIT_RUNTIME)
    except (KafkaError, OSError) as exc:
        fail(f"Kafka at {bootstrap}: {exc}", EXIT_RUNTIME)
    _summary(sims, stats.acked, stats)
    if planned is not None and stats.acked < planned:
        console.print(
            f"[yellow]note:[/] {stats.acked:,} of {planned:,} planned events sent: the broker "
            f"took {stats.rate:,.0f}/s of the {rate:,.0f}/s asked (or the run was stopped)",
            highlight=False,
        )


def _cutoff(wall: timedelta) -> float:
    """Wall seconds after which a run that fell behind stops (the stream ends on its own
    at ``duration`` when the broker keeps up; the slack keeps its tail from being cut)."""
    seconds = wall.total_seconds()
    return seconds * 1.1 + 1.0


def _summary(sims: Sequence[Simulator], count: int, stats: ProduceStats | None) -> None:
    faults = sum(sum(sim.faults.values()) for sim in sims)
    reports = sum(sim.reports for sim in sims)
    line = f"{count:,} events: {reports:,} reports, {faults:,} faulty readings"
    if stats is not None:
        line += (
            f"; {stats.bytes / 1e6:,.1f} MB in {stats.elapsed:.1f} s = {stats.rate:,.0f} events/s"
        )
    console.print(line, highlight=False)
    sys.stdout.flush()
