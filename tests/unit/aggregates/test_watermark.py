"""The source clock: the watermark waits for the slowest source that still reports; a
source is idle only when its own partition delivered on without it."""

from __future__ import annotations

from pipeline.aggregates.watermark import SourceClock, merge_progress

S = 1_000_000  # a second, in microseconds
IDLE = 3 * S


def clock() -> SourceClock:
    return SourceClock(lateness_us=0, idle_us=IDLE)


def test_the_watermark_is_the_slowest_source() -> None:
    c = clock()
    c.observe("a", 100 * S, None, None, {})
    c.observe("b", 40 * S, None, None, {})
    assert c.watermark({}) == 40 * S
    c.observe("b", 120 * S, None, None, {})
    assert c.watermark({}) == 100 * S


def test_one_reading_far_ahead_moves_nothing() -> None:
    c = clock()
    progress = {"raw:0": 10 * S, "raw:1": 10 * S}
    c.observe("a", 100 * S, 10 * S, "raw:0", progress)
    c.observe("b", 100 * S, 10 * S, "raw:1", progress)
    c.observe("ahead", 100 * S + 86_400 * S, 10 * S, "raw:1", progress)
    assert c.watermark(progress) == 100 * S


def test_a_backlog_on_its_partition_never_makes_a_source_idle() -> None:
    """After a restart the worker reads raw:0 far ahead of raw:1: b's readings are still
    on their way (raw:1's progress has not passed them), so b holds the windows."""
    c = clock()
    progress = {"raw:0": 0, "raw:1": 0}
    c.observe("a", 10 * S, 0, "raw:0", progress)
    c.observe("b", 10 * S, 0, "raw:1", progress)
    for second in range(1, 60):  # raw:0 catches up a minute of arrivals first
        c.observe("a", (10 + second) * S, second * S, "raw:0", progress)
        merge_progress(progress, {"raw:0": second * S})
    assert not c.idle("b", progress)
    assert c.watermark(progress) == 10 * S
    merge_progress(progress, {"raw:1": 59 * S})  # raw:1 arrives: without b's readings
    assert c.idle("b", progress)
    assert c.watermark(progress) == 69 * S


def test_a_silent_source_goes_idle_when_its_partition_delivers_on() -> None:
    c = clock()
    progress = {"raw:0": 0}
    c.observe("quiet", 10 * S, 0, "raw:0", progress)
    c.observe("busy", 10 * S, 0, "raw:0", progress)
    merge_progress(progress, {"raw:0": 2 * S})
    c.observe("busy", 20 * S, 2 * S, "raw:0", progress)
    assert c.watermark(progress) == 10 * S  # 2 s of silence: still counts
    merge_progress(progress, {"raw:0": 4 * S})
    c.observe("busy", 30 * S, 4 * S, "raw:0", progress)
    assert c.watermark(progress) == 30 * S  # 4 s: idle
    c.observe("quiet", 31 * S, 5 * S, "raw:0", progress)  # back: it counts again
    assert c.sources(progress) == {"quiet": 31 * S, "busy": 30 * S}


def test_a_registered_source_that_never_reports_waits_for_every_partition() -> None:
    c = clock()
    c.expect(["dead"], 0, 0)
    progress = {"raw:0": 10 * S, "raw:1": 1 * S}
    c.observe("a", 50 * S, 10 * S, "raw:0", progress)
    assert c.watermark(progress) == 0  # raw:1 is behind: "dead" may be on it
    merge_progress(progress, {"raw:1": 10 * S})
    assert c.watermark(progress) == 50 * S


def test_without_arrival_no_source_is_ever_idle() -> None:
    c = clock()
    c.observe("a", 10 * S, None, None, {})
    c.observe("b", 10_000 * S, None, None, {})
    assert c.watermark({}) == 10 * S
    c.push(20_000 * S)
    assert c.watermark({}) == 20_000 * S


def test_a_snapshot_round_trips_its_active_sources() -> None:
    c = clock()
    progress = {"raw:0": 10 * S}
    c.observe("a", 50 * S, 10 * S, "raw:0", progress)
    c.observe("gone", 40 * S, 1 * S, "raw:0", progress)
    back = SourceClock.from_dict(c.to_dict(progress), 0, IDLE)
    assert back.sources(progress) == {"a": 50 * S}
    assert back.watermark(progress) == c.watermark(progress) == 50 * S
