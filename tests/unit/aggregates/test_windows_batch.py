"""`WindowState.add_rows` (a batch at once, the watermark asked again only when a reading
could move it) leaves exactly the state and rows that `add_row` one reading at a time
does: out-of-order sources, late readings, idle and waking sources, unknown arrivals."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.aggregates.codec import from_micros
from pipeline.aggregates.watermark import NO_PARTITION, home_partition, merge_progress
from pipeline.aggregates.windows import WindowState
from pipeline.engine.emit import Position
from pipeline.models import AreaLevel, ReadingRow
from tests.support.store_rows import models

SECOND = 1_000_000
T0 = 1_714_557_600 * SECOND  # 2024-05-01 10:00 UTC
LEVELS = (AreaLevel.street, AreaLevel.district, AreaLevel.grid)


def breached(metric: str, value: float) -> bool:
    return value > 50.0 if metric == "pm25" else value > 70.0


def new_state(lateness_s: int) -> WindowState:
    return WindowState(
        window=timedelta(minutes=1), allowed_lateness=timedelta(seconds=lateness_s),
        city_code="310000", levels=LEVELS, idle_timeout=timedelta(minutes=2),
    )  # fmt: skip


readings = st.lists(
    st.tuples(
        st.integers(0, 7),  # sensor
        st.integers(-600, 600),  # event time (s after T0); the step below drifts it
        st.floats(0, 100, allow_nan=False),
        st.sampled_from(["pm25", "noise"]),
        st.integers(0, 2),  # raw partition
        st.booleans(),  # arrival known
        st.booleans(),  # a position known
        st.booleans(),  # the grid level known
    ),
    min_size=1,
    max_size=120,
)


def rows_of(
    drawn: list[tuple[int, int, float, str, int, bool, bool, bool]],
) -> list[tuple[ReadingRow, Position | None]]:
    out = []
    for n, (sensor, at_s, value, metric, part, arrived, placed, gridded) in enumerate(drawn):
        event_us = T0 + (at_s + 20 * n) * SECOND  # mostly forward, sometimes back
        arrived_us = T0 + 30 * n * SECOND if arrived else None
        row = ReadingRow(
            f"e{n}", f"s{sensor}", metric, value, "u", event_us, f"d{sensor % 2}",
            f"st{sensor}", f"g{sensor}" if gridded else None, None, None, None, "canonical",
            arrived_us,
        )  # fmt: skip
        out.append((row, Position(f"raw:{part}", n) if placed else None))
    return out


@settings(max_examples=300, deadline=None)
@given(readings, st.integers(1, 40), st.sampled_from([0, 30, 90]))
def test_a_batch_at_once_equals_its_readings_one_by_one(
    drawn: list[tuple[int, int, float, str, int, bool, bool, bool]], size: int, lateness: int
) -> None:
    pairs = rows_of(drawn)
    one, batch = new_state(lateness), new_state(lateness)
    for state in (one, batch):
        state.expect(["s0", "s1", "s9"], from_micros(T0), T0)  # s9 never reports
    late_one = late_batch = 0
    out_one, out_batch = [], []
    for first in range(0, len(pairs), size):
        chunk = pairs[first : first + size]
        for row, position in chunk:
            late_one += one.add_row(row, breached(row.metric, row.value),
                                    home_partition(row, position))  # fmt: skip
        late_batch += batch.add_rows(
            [row for row, _ in chunk], [position for _, position in chunk], breached
        )
        # The batch's progress: each partition's newest arrival in it, as the intake sends.
        progress: dict[str, int] = {}
        for row, position in chunk:
            if row.arrived_us is not None:
                where = NO_PARTITION if position is None else position.partition
                progress[where] = max(progress.get(where, -1), row.arrived_us)
        for state in (one, batch):
            merge_progress(state.progress, progress)
        out_one += models(one.advance())
        out_batch += models(batch.advance())
    assert late_batch == late_one == one.late_count == batch.late_count
    assert [r.model_dump() for r in out_batch] == [r.model_dump() for r in out_one]
    assert batch.to_dict() == one.to_dict()
    assert list(batch.changed) == list(one.changed)
    assert batch.keys_by_window == one.keys_by_window
    assert batch.clock.entry("s9") == one.clock.entry("s9")
    assert batch.watermark == one.watermark


def test_a_new_source_behind_the_others_lowers_the_watermark_within_the_batch() -> None:
    """Lateness 90 s, windows of a minute. s0 is at 10:05:30 (watermark 10:04:00); s5
    reports for the first time at 10:04:40, not late (its window ends at 10:05), and
    lowers the watermark to 10:03:10; so s0's reading of 10:03:30 that follows in the same
    batch is not late either (a watermark kept from before s5 would have dropped it)."""
    for fold in ("one by one", "batch"):
        state = new_state(90)
        state.add_rows([row("s0", at(5, 30), 0)], [None], breached)
        chunk = [row("s5", at(4, 40), 1), row("s0", at(3, 30), 2)]
        if fold == "batch":
            late = state.add_rows(chunk, [None, None], breached)
        else:
            late = sum(state.add_row(r, False) for r in chunk)
        assert late == 0, fold
        assert state.watermark == from_micros(at(3, 10)), fold


def at(minutes: int, seconds: int) -> int:
    return T0 + (60 * minutes + seconds) * SECOND


def row(sensor: str, event_us: int, n: int) -> ReadingRow:
    return ReadingRow(
        f"e{n}", sensor, "pm25", 10.0, "u", event_us, "d0", "st0", None, None, None, None,
        "canonical", None,
    )  # fmt: skip
