"""The shared window accumulator: exact numbers, order-free evidence ids, epoch alignment."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.aggregates.accumulator import (
    STATISTICS,
    Accumulator,
    window_micros,
    window_start,
)

MINUTE_US = 60_000_000


def test_window_start_aligns_to_the_epoch_before_and_after_it() -> None:
    assert window_start(0, MINUTE_US) == 0
    assert window_start(MINUTE_US - 1, MINUTE_US) == 0
    assert window_start(MINUTE_US, MINUTE_US) == MINUTE_US
    assert window_start(-1, MINUTE_US) == -MINUTE_US  # before 1970: still the window below
    assert window_micros(timedelta(minutes=1)) == MINUTE_US


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        window_micros(timedelta(0))
    with pytest.raises(ValueError, match="window must be positive"):
        window_micros(timedelta(seconds=-1))


def test_count_exact_sum_min_max_and_breaches() -> None:
    acc = Accumulator()
    for value, breached in ((1e16, True), (1.0, False), (-1e16, True), (3.0, False)):
        acc.add(value, breached)
    assert (acc.count, acc.min, acc.max, acc.breaches) == (4, -1e16, 1e16, 2)
    assert acc.total() == 4.0  # a float running sum would say 2.0 or 0.0
    assert acc.statistic("mean") == 1.0
    assert list(acc.event_ids) == [] and acc.first_event_id == ""


@pytest.mark.parametrize(
    ("name", "expected"), [("mean", 140.0), ("min", 100.0), ("max", 200.0), ("sum", 420.0)]
)
def test_every_statistic(name: str, expected: float) -> None:
    acc = Accumulator()
    for value in (100.0, 200.0, 120.0):
        acc.add(value)
    assert acc.statistic(name) == expected
    assert acc.statistic("count") == 3.0
    assert set(STATISTICS) == {"mean", "min", "max", "sum", "count"}


def summary(acc: Accumulator) -> tuple[int, float, float, float, list[str]]:
    return (acc.count, acc.min, acc.max, acc.total(), acc.event_ids)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.text("abcdef", min_size=1, max_size=3), st.floats(-1e9, 1e9)),
        min_size=1,
        max_size=40,
        unique_by=lambda pair: pair[0],
    ),
    st.randoms(use_true_random=False),
    st.integers(1, 8),
)
def test_any_arrival_order_gives_the_same_window(
    readings: list[tuple[str, float]],
    rnd,  # type: ignore[no-untyped-def]
    keep: int,
) -> None:
    shuffled = list(readings)
    rnd.shuffle(shuffled)
    windows = []
    for order in (readings, shuffled):
        acc = Accumulator()
        for event_id, value in order:
            acc.add_event(value, event_id, keep)
        windows.append(acc)
    first, second = windows
    # The partials themselves depend on the order; what they sum to does not.
    assert summary(first) == summary(second)
    ids = sorted(event_id for event_id, _ in readings)
    assert first.event_ids == ids[:keep] and first.first_event_id == ids[0]
    assert first.total() == math.fsum(value for _, value in readings)
    assert first.count == len(readings) and first.breaches == 0


@pytest.mark.parametrize("breached", [False, True])
@pytest.mark.parametrize("value", [0.0, -0.0, 2.5, -1e300])
def test_a_window_made_with_its_first_value_equals_one_added(value: float, breached: bool) -> None:
    added = Accumulator()
    added.add(value, breached)
    assert Accumulator.of(value, breached) == added
