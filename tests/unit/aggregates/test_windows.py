"""Event-time window aggregates: exact numbers, lateness, persistence, offline equality."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.aggregates.windows import WindowState, in_row_order, to_micros
from pipeline.models import AdminCodes, AggregateRow, AreaLevel, Reading
from tests.support.store_rows import models

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CITY = "310000"


def reading(
    at: datetime,
    value: float,
    *,
    street: str | None = "310101002",
    district: str | None = "310101",
    metric: str = "pm25",
    n: int = 0,
) -> Reading:
    return Reading(
        event_id=f"e{n}-{at.isoformat()}-{value}",
        sensor_id="aq-1",
        metric=metric,
        value=value,
        unit="ug/m3",
        observed_at=at,
        location=None,
        areas=AdminCodes(district=district, street=street, grid=None, community=None),
        source_format="canonical",
    )


def state(**kwargs: object) -> WindowState:
    params: dict[str, object] = {
        "window": MINUTE,
        "allowed_lateness": timedelta(seconds=30),
        "city_code": CITY,
    }
    params.update(kwargs)
    return WindowState(**params)  # type: ignore[arg-type]


def by_key(rows: list[AggregateRow]) -> dict[tuple[str, str, str, datetime], AggregateRow]:
    out = {(str(r.level), r.area_code, r.metric, r.window_start): r for r in rows}
    assert len(out) == len(rows), "row keys must be unique"
    return out


def test_window_closes_at_watermark_with_exact_numbers() -> None:
    ws = state()
    s = timedelta(seconds=1)
    assert ws.add(reading(T0 + 5 * s, 10.0), False) is False
    assert ws.add(reading(T0 + 20 * s, 30.0), True) is False
    # no street: counts for the district and the city only
    assert ws.add(reading(T0 + 40 * s, 50.0, street=None), True) is False
    assert ws.add(reading(T0 + 70 * s, 5.0, street="310101003"), False) is False
    # watermark 10:00:40 < window end 10:01: nothing closes yet
    assert models(ws.advance()) == []
    assert ws.watermark == T0 + 40 * s

    assert ws.add(reading(T0 + 91 * s, 7.0, street="310101003"), False) is False
    rows = models(ws.advance())  # watermark 10:01:01 >= 10:01
    assert [(r.level, r.area_code) for r in rows] == [
        (AreaLevel.city, CITY),
        (AreaLevel.district, "310101"),
        (AreaLevel.street, "310101002"),
    ]
    city, district, street = rows
    for row in (city, district):
        assert (row.count, row.sum, row.min, row.max, row.mean, row.breaches) == (
            3,
            90.0,
            10.0,
            50.0,
            30.0,
            2,
        )
        assert (row.window_start, row.window_end) == (T0, T0 + MINUTE)
        assert row.metric == "pm25"
    assert (street.count, street.sum, street.min, street.max, street.mean, street.breaches) == (
        2,
        40.0,
        10.0,
        30.0,
        20.0,
        1,
    )

    # the 10:00 window is closed: a straggler is late, counted and dropped
    assert ws.add(reading(T0 + 59 * s, 1000.0), True) is True
    assert ws.late_count == 1

    rest = models(ws.flush_all())
    assert [(r.level, r.area_code, r.count, r.sum, r.mean) for r in rest] == [
        (AreaLevel.city, CITY, 2, 12.0, 6.0),
        (AreaLevel.district, "310101", 2, 12.0, 6.0),
        (AreaLevel.street, "310101003", 2, 12.0, 6.0),
    ]
    assert all(r.window_start == T0 + MINUTE for r in rest)
    assert ws.open_windows == 0
    # after flush_all, the flushed windows are closed for good
    assert ws.add(reading(T0 + 100 * s, 1.0), False) is True


def test_reading_without_district_counts_for_the_city_only() -> None:
    ws = state()
    ws.add(reading(T0, 4.0, street=None, district=None), False)
    rows = models(ws.flush_all())
    assert [(r.level, r.area_code, r.count) for r in rows] == [(AreaLevel.city, CITY, 1)]


def test_levels_filter_and_metrics_are_separate() -> None:
    ws = state(levels=(AreaLevel.district,))
    ws.add(reading(T0, 1.0, metric="pm25"), False)
    ws.add(reading(T0, 2.0, metric="no2"), True)
    rows = models(ws.flush_all())
    assert [(r.level, r.metric, r.sum, r.breaches) for r in rows] == [
        (AreaLevel.district, "no2", 2.0, 1),
        (AreaLevel.district, "pm25", 1.0, 0),
    ]


def test_explicit_watermark_closes_idle_windows_and_never_goes_back() -> None:
    ws = state()
    ws.add(reading(T0, 1.0), False)
    assert models(ws.advance(T0 + timedelta(seconds=59))) == []
    assert len(models(ws.advance(T0 + MINUTE))) == 3
    models(ws.advance(T0))  # lower: ignored
    assert ws.watermark == T0 + MINUTE
    assert ws.add(reading(T0 + timedelta(seconds=30), 1.0), False) is True


def test_lateness_does_not_depend_on_when_advance_is_called() -> None:
    # 10:00:10 then 10:01:45 (watermark 10:01:15 closes 10:00) then 10:00:50: late
    # whether or not advance() ran in between.
    for call_advance in (False, True):
        ws = state()
        ws.add(reading(T0 + timedelta(seconds=10), 1.0), False)
        ws.add(reading(T0 + timedelta(seconds=105), 1.0), False)
        if call_advance:
            models(ws.advance())
        assert ws.add(reading(T0 + timedelta(seconds=50), 1.0), False) is True


def test_sum_is_exact_whatever_the_order() -> None:
    values = [1e16, 1.0, -1e16, 3.0, 0.1, 0.2]
    sums = set()
    for order in (values, list(reversed(values)), sorted(values)):
        ws = state(levels=(AreaLevel.city,))
        for v in order:
            ws.add(reading(T0, v), False)
        (row,) = models(ws.flush_all())
        sums.add(row.sum)
    assert sums == {math.fsum(values)}


def test_state_round_trips_through_json() -> None:
    ws = state()
    ws.add(reading(T0, 1.5), True)
    ws.add(reading(T0 + timedelta(seconds=61), 0.1, street=None), False)
    ws.add(reading(T0 + timedelta(seconds=62), 0.2, street=None), False)
    snapshot = json.loads(json.dumps(ws.to_dict()))
    restored = WindowState.from_dict(snapshot)
    assert restored.to_dict() == ws.to_dict()
    assert restored.watermark == ws.watermark
    assert models(restored.flush_all()) == models(ws.flush_all())


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        state(window=timedelta(0))
    with pytest.raises(ValueError, match="aggregation levels"):
        state(levels=(AreaLevel.community,))
    with pytest.raises(ValueError, match="snapshot version"):
        WindowState.from_dict({"version": 99})


# -- offline recomputation -------------------------------------------------------------

Key = tuple[str, str, str, datetime]


def offline(
    events: list[tuple[Reading, bool]], window: timedelta, lateness: timedelta
) -> tuple[dict[Key, tuple[int, float, float, float, float, int]], int]:
    """groupby recomputation with the documented lateness rule applied in arrival order."""
    w = window // timedelta(microseconds=1)
    max_seen: int | None = None
    late = 0
    groups: dict[Key, list[tuple[float, bool]]] = defaultdict(list)
    for r, breached in events:
        t = to_micros(r.observed_at)
        start_us = t - t % w
        if (
            max_seen is not None
            and max_seen - lateness // timedelta(microseconds=1) >= start_us + w
        ):
            late += 1
            continue
        max_seen = t if max_seen is None else max(max_seen, t)
        start = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=start_us)
        if r.areas.street:
            groups[("street", r.areas.street, r.metric, start)].append((r.value, breached))
        if r.areas.district:
            groups[("district", r.areas.district, r.metric, start)].append((r.value, breached))
        groups[("city", CITY, r.metric, start)].append((r.value, breached))
    result = {}
    for key, items in groups.items():
        vals = [v for v, _ in items]
        total = math.fsum(vals)
        result[key] = (
            len(vals),
            total,
            min(vals),
            max(vals),
            total / len(vals),
            sum(b for _, b in items),
        )
    return result, late


def summary(rows: list[AggregateRow]) -> dict[Key, tuple[int, float, float, float, float, int]]:
    return {
        key: (r.count, r.sum, r.min, r.max, r.mean, r.breaches) for key, r in by_key(rows).items()
    }


event = st.tuples(
    st.integers(min_value=0, max_value=600_000),  # ms after T0 (10 minutes)
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([("s1", "d1"), ("s2", "d1"), ("s3", "d2"), (None, "d2"), (None, None)]),
    st.sampled_from(["pm25", "no2"]),
    st.booleans(),
)


def build(
    raw: list[tuple[int, float, tuple[str | None, str | None], str, bool]],
) -> list[tuple[Reading, bool]]:
    return [
        (
            reading(
                T0 + timedelta(milliseconds=ms),
                v,
                street=area[0],
                district=area[1],
                metric=m,
                n=i,
            ),
            b,
        )
        for i, (ms, v, area, m, b) in enumerate(raw)
    ]


def run(
    ws: WindowState, events: list[tuple[Reading, bool]], advance_every: int, snapshot_at: int
) -> tuple[list[AggregateRow], WindowState]:
    rows: list[AggregateRow] = []
    for i, (r, breached) in enumerate(events):
        if i == snapshot_at:  # a restart from persisted state mid-stream
            ws = WindowState.from_dict(json.loads(json.dumps(ws.to_dict())))
        ws.add(r, breached)
        if advance_every and i % advance_every == 0:
            rows.extend(models(ws.advance()))
    rows.extend(models(ws.flush_all()))
    return rows, ws


@settings(max_examples=150, deadline=None)
@given(
    raw=st.lists(event, max_size=60),
    delays=st.lists(st.integers(min_value=0, max_value=30_000), min_size=60, max_size=60),
    window_s=st.sampled_from([10, 60, 300]),
    advance_every=st.integers(min_value=0, max_value=7),
    snapshot_at=st.integers(min_value=0, max_value=60),
)
def test_disorder_within_lateness_equals_offline_groupby(
    raw: list[tuple[int, float, tuple[str | None, str | None], str, bool]],
    delays: list[int],
    window_s: int,
    advance_every: int,
    snapshot_at: int,
) -> None:
    events = build(raw)
    # arrival = event time + a delay of at most the allowed lateness: nothing may be late
    order = sorted(range(len(events)), key=lambda i: raw[i][0] + delays[i])
    arrived = [events[i] for i in order]
    window = timedelta(seconds=window_s)
    rows, ws = run(
        state(window=window, allowed_lateness=timedelta(seconds=30)),
        arrived,
        advance_every,
        snapshot_at,
    )
    expected, late = offline(events, window, timedelta(days=1))  # no lateness at all
    assert late == 0
    assert ws.late_count == 0
    assert summary(rows) == expected


@settings(max_examples=150, deadline=None)
@given(
    raw=st.lists(event, max_size=60),
    window_s=st.sampled_from([10, 60]),
    lateness_s=st.sampled_from([0, 5, 30]),
    advance_every=st.integers(min_value=0, max_value=7),
    snapshot_at=st.integers(min_value=0, max_value=60),
)
def test_any_order_matches_offline_with_late_events_counted(
    raw: list[tuple[int, float, tuple[str | None, str | None], str, bool]],
    window_s: int,
    lateness_s: int,
    advance_every: int,
    snapshot_at: int,
) -> None:
    events = build(raw)
    window, lateness = timedelta(seconds=window_s), timedelta(seconds=lateness_s)
    rows, ws = run(
        state(window=window, allowed_lateness=lateness), events, advance_every, snapshot_at
    )
    expected, late = offline(events, window, lateness)
    assert ws.late_count == late
    assert summary(rows) == expected


T_BASE = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _from(sensor: str, at: datetime, value: float) -> Reading:
    return reading(at, value).model_copy(update={"sensor_id": sensor, "event_id": f"{sensor}{at}"})


def test_windows_wait_for_a_sensor_that_trails_its_neighbours() -> None:
    """Two sensors of one district arrive through different partitions: one is 3 min behind."""
    s = state()
    s.expect(["lead", "trail"], T_BASE)  # the registry's sensors of this district
    rows = []
    for minute in range(4):  # the leader reports minutes 0..3 first
        assert not s.add(_from("lead", T_BASE + minute * MINUTE, 1.0), False)
        rows += models(s.advance())
    for minute in range(4):  # then the trailing sensor catches up: nothing of it is late
        assert not s.add(
            _from("trail", T_BASE + minute * MINUTE + timedelta(seconds=5), 2.0), False
        )
        rows += models(s.advance())
    street = {r.window_start: r for r in rows if r.level == AreaLevel.street}
    assert [street[T_BASE + m * MINUTE].count for m in range(2)] == [2, 2]  # 08:02 still open
    assert s.late_count == 0


def test_an_idle_sensor_stops_holding_windows_back() -> None:
    """Idle means nothing has arrived from it for `idle_timeout` of arrival time."""
    s = state(idle_timeout=timedelta(minutes=5))

    def add(sensor: str, at: datetime) -> bool:  # a live stream: arrival = event time
        return s.add(_from(sensor, at, 1.0), False, to_micros(at))

    add("quiet", T_BASE)
    add("busy", T_BASE + 2 * MINUTE)
    assert models(s.advance()) == []  # "quiet" still counts: its 08:00 window stays open
    add("busy", T_BASE + 6 * MINUTE)
    closed = {r.window_start for r in models(s.advance())}
    assert T_BASE in closed and T_BASE + 2 * MINUTE in closed
    restored = WindowState.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored.sources == {"busy": to_micros(T_BASE + 6 * MINUTE)}


def test_a_reading_from_the_future_does_not_make_the_others_idle() -> None:
    """One sensor stamped a day ahead (arriving now) moves nothing: the others still hold
    the windows, and their next readings count."""
    s = state(idle_timeout=timedelta(minutes=5))
    now = to_micros(T_BASE)
    assert not s.add(_from("a", T_BASE, 1.0), False, now)
    assert not s.add(_from("b", T_BASE, 1.0), False, now)
    assert not s.add(_from("ahead", T_BASE + timedelta(days=1), 9.0), False, now + 1)
    assert models(s.advance()) == []
    for minute in range(1, 4):
        arrived = now + to_micros(datetime(1970, 1, 1, 0, minute, tzinfo=UTC))
        assert not s.add(_from("a", T_BASE + minute * MINUTE, 1.0), False, arrived)
        assert not s.add(_from("b", T_BASE + minute * MINUTE, 1.0), False, arrived)
    assert s.late_count == 0
    # a and b are at 08:03: with 30 s of lateness 08:00 and 08:01 have closed, 08:02 not
    street = {r.window_start: r.count for r in models(s.advance()) if r.level == AreaLevel.street}
    assert street == {T_BASE + m * MINUTE: 2 for m in range(2)}


def test_without_arrival_times_no_source_is_ever_idle() -> None:
    """A dry run without arrival times waits for every source, then closes at the end."""
    s = state(idle_timeout=timedelta(minutes=5))
    s.add(_from("quiet", T_BASE, 1.0), False)
    s.add(_from("busy", T_BASE + 60 * MINUTE, 1.0), False)
    assert models(s.advance()) == []
    assert not s.add(_from("quiet", T_BASE + MINUTE, 1.0), False)  # not late
    rows = models(s.flush_all())
    assert sum(r.count for r in rows if r.level == AreaLevel.street) == 3


_LEVEL_RANK = {"city": 0, "district": 1, "street": 2, "grid": 3}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(_LEVEL_RANK)),  # the levels aggregation accepts
            st.sampled_from(["a", "b", "c1", "c2"]),
            st.sampled_from(["pm25", "no2"]),
            st.sampled_from([0, 60_000_000, 120_000_000]),
        ),
        unique=True,
    )
)
def test_rows_are_ordered_by_window_then_city_district_street_grid(
    keys: list[tuple[str, str, str, int]],
) -> None:
    # The emitted order is part of a batch's content (its dedup token): it must not
    # depend on how the cells were sorted.
    expected = sorted(keys, key=lambda k: (k[3], _LEVEL_RANK[k[0]], k[1], k[2]))
    assert in_row_order(list(reversed(keys))) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s3", "late-comer"]),
            st.integers(min_value=0, max_value=12 * 60),  # seconds after T_BASE
            st.booleans(),  # advance after this reading
        ),
        min_size=1,
        max_size=60,
    )
)
def test_windows_known_open_close_as_a_scan_of_every_cell_would(
    steps: list[tuple[str, int, bool]],
) -> None:
    # `advance` keeps the starts of open windows instead of scanning every cell: a state
    # made to scan (its index forgotten before each advance) must emit the same rows.
    kept, scanned = state(), state()
    kept_rows: list[AggregateRow] = []
    scanned_rows: list[AggregateRow] = []
    for n, (sensor, second, advance) in enumerate(steps):
        at = T_BASE + timedelta(seconds=second)
        for s in (kept, scanned):
            s.add(_from(sensor, at, float(n)), False, to_micros(at) + n)
        if advance:
            kept_rows += models(kept.advance())
            scanned.keys_by_window = None
            scanned_rows += models(scanned.advance())
    assert kept_rows == scanned_rows
    assert models(kept.flush_all()) == models(scanned.flush_all())
    assert kept.late_count == scanned.late_count
