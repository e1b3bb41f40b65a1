"""Aggregation's window states as many table entries: a batch writes what it touched, and a
crash that lands any part of a batch's changelog records still counts every reading once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.aggregates.codec import to_micros
from pipeline.aggregates.windows import WindowState
from pipeline.engine import window_table
from pipeline.engine.emit import Position
from pipeline.engine.stages import AggregateStage
from pipeline.engine.window_table import WindowTable
from pipeline.models import (
    AdminCodes,
    AggregateRow,
    AreaLevel,
    Reading,
    ReadingBatch,
    ReadingRow,
    StoreRow,
    row_model,
)
from pipeline.topology import load_topology
from tests.support.paths import DEMO

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
DISTRICT = "310101"
#: (sensor, its street, how far behind the live edge its readings are observed)
SENSORS = (
    ("aq-001", "310101002", 0),
    ("noise-001", "310101013", 0),
    ("water-001", "310101018", 30),  # a sensor that trails its neighbours
    ("walk-in", "310101002", 5),  # not in the registry
)


#: In the table key of a group of window cells (`<district>␟g␞start␞index`).
GROUP_KEY = "\x1fg\x1e"


class Journal(dict[str, Any]):
    """A dict backing that records every write and deletion in order (a changelog)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        value = orjson.loads(orjson.dumps(value))  # what a changelog round trip gives
        self.log.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append((key, None))
        super().__delitem__(key)


def replayed(log: list[tuple[str, Any]]) -> dict[str, Any]:
    """What a table recovered from the first records of a changelog holds."""
    table: dict[str, Any] = {}
    for key, value in log:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def message(i: int) -> tuple[ReadingBatch, list[Position | None]]:
    """Readings message `i`: one reading per sensor, arriving 20 s after the previous
    message, and every 7th message a reading observed 3 minutes ago (late)."""
    arrived = T0 + timedelta(seconds=20 * i)
    readings, arrivals = [], []
    for n, (sensor, street, behind) in enumerate(SENSORS):
        observed = arrived - timedelta(seconds=behind)
        if i % 7 == 6 and n == 0:
            observed -= timedelta(minutes=3)
        readings.append(
            Reading(
                event_id=f"m{i}-{n}",
                sensor_id=sensor,
                metric="pm25",
                value=10.0 + i + n / 10,
                unit="ug/m3",
                observed_at=observed,
                areas=AdminCodes(district=DISTRICT, street=street),
            )  # fmt: skip
        )
        arrivals.append(to_micros(arrived))
    batch = ReadingBatch.of(readings, arrivals)
    batch = batch.model_copy(update={"progress": {"r:0": to_micros(arrived)}})
    return batch, [Position("r:0", i * 10 + n) for n in range(len(SENSORS))]


MESSAGES = [message(i) for i in range(36)]
BATCHES = [range(start, start + 4) for start in range(0, len(MESSAGES), 4)]


#: Sensors that each have a street cell of their own (walk-ins: not in the registry).
CROWD = 120


def sparse_message(i: int) -> tuple[ReadingBatch, list[Position | None]]:
    """Readings message `i` of a crowd: in message 0 every sensor `c<n>` reports, each on
    a street of its own; in message i > 0, one sensor in ten (`n % 10 == i % 10`), i
    seconds later, so a batch changes a few cells of every street group."""
    arrived = T0 + timedelta(seconds=1 + i)
    crowd = range(CROWD) if i == 0 else range(i % 10, CROWD, 10)
    readings = [
        Reading(
            event_id=f"c{i}-{n}",
            sensor_id=f"c{n}",
            metric="pm25",
            value=n + i / 8,
            unit="ug/m3",
            observed_at=arrived,
            areas=AdminCodes(district=DISTRICT, street=f"st{n}"),
        )  # fmt: skip
        for n in crowd
    ]
    batch = ReadingBatch.of(readings, [to_micros(arrived)] * len(readings))
    batch = batch.model_copy(update={"progress": {"r:0": to_micros(arrived)}})
    return batch, [Position("r:0", i * CROWD + n) for n in range(len(readings))]


SPARSE = [sparse_message(i) for i in range(13)]
SPARSE_BATCHES = [range(0, 1), *(range(start, start + 2) for start in range(1, 13, 2))]


def run(
    backing: dict[str, Any],
    batches: list[range],
    marks: list[int] | None = None,
    messages: list[tuple[ReadingBatch, list[Position | None]]] = MESSAGES,
) -> list[StoreRow]:
    """Feed `batches` of `messages`, persisting after each (and noting where each batch's
    changelog records start in a journal), then close every window."""
    stage = AggregateStage(load_topology(DEMO), backing)
    rows: list[StoreRow] = []
    for batch in batches:
        if marks is not None and isinstance(backing, Journal):
            marks.append(len(backing.log))
        for i in batch:
            rows += stage.on_readings(DISTRICT, *messages[i])
        stage.persist()
    return rows + stage.finish()


def by_key(rows: list[StoreRow]) -> dict[tuple[Any, ...], AggregateRow]:
    models = map(row_model, rows)
    return {(r.level, r.area_code, r.metric, r.window_start): r for r in models}


def test_the_reference_run_closes_windows_and_drops_late_readings() -> None:
    stage_rows = run({}, BATCHES)
    rows = by_key(stage_rows)
    assert len(rows) == len(stage_rows)  # each window closed once
    district = [r for r in rows.values() if r.level == "district"]
    assert len(district) >= 12
    # 36 messages of 4 readings; the late ones (every 7th message's first) count nowhere
    assert sum(r.count for r in district) < 36 * len(SENSORS)


@pytest.mark.parametrize("per_group", [window_table.CELLS_PER_GROUP, 1])
@pytest.mark.parametrize("crashed", range(1, len(BATCHES)))
def test_a_crash_anywhere_in_a_batchs_changelog_counts_every_reading_once(
    crashed: int, per_group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while batch `crashed`'s changelog records were being sent: for every prefix
    of them that reached the broker, the restarted worker replays the batch (and the rest)
    and every row it writes equals the uncrashed run's row for that window. (With one
    cell a group, as with the full city's large districts, a window spans many groups.)"""
    monkeypatch.setattr(window_table, "CELLS_PER_GROUP", per_group)
    journal = Journal()
    starts: list[int] = []
    reference = by_key(run(journal, BATCHES, starts))
    begin = starts[crashed]
    end = starts[crashed + 1] if crashed + 1 < len(starts) else len(journal.log)
    assert end - begin > 3
    for landed in range(begin, end + 1):
        # Rows written before the crash (to the store, which replaces a window's row):
        first = AggregateStage(load_topology(DEMO), {})
        written: list[StoreRow] = []
        for batch in BATCHES[: crashed + 1]:
            for i in batch:
                written += first.on_readings(DISTRICT, *MESSAGES[i])
            first.persist()
        written += run(replayed(journal.log[:landed]), BATCHES[crashed:])
        for row in map(row_model, written):
            key = (row.level, row.area_code, row.metric, row.window_start)
            assert row == reference[key], f"landed {landed - begin} records: {key}"
        assert set(by_key(written)) == set(reference)


@pytest.mark.parametrize("crashed", range(1, len(SPARSE_BATCHES)))
def test_a_crash_while_cells_move_to_new_groups_counts_every_reading_once(
    crashed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with batches that change a few cells of each group (so they are written
    as new copies, their old groups keep older ones, and groups left mostly with older
    copies are compacted or deleted): for every prefix of batch `crashed`'s records, the
    replay's rows equal the uncrashed run's."""
    monkeypatch.setattr(window_table, "CELLS_PER_GROUP", 20)
    journal = Journal()
    starts: list[int] = []
    reference = by_key(run(journal, SPARSE_BATCHES, starts, SPARSE))
    assert len(reference) == CROWD + 1  # one window: its streets and the district
    later = [value for key, value in journal.log[starts[1] :] if GROUP_KEY in key and value]
    streets_written = sum(1 for _, members in later for cell in members if cell[0] == "street")
    # each later batch changes 24 street cells (rewriting their groups: all 120 each time)
    assert streets_written <= 2 * 24 * (len(SPARSE_BATCHES) - 1)
    begin = starts[crashed]
    end = starts[crashed + 1] if crashed + 1 < len(starts) else len(journal.log)
    for landed in range(begin, end + 1):
        rows = run(replayed(journal.log[:landed]), SPARSE_BATCHES[crashed:], None, SPARSE)
        assert by_key(rows) == reference, f"landed {landed - begin} records"
        assert len(rows) == len(reference)


@pytest.mark.parametrize("crashed", range(1, len(BATCHES)))
def test_after_the_replay_the_clock_is_the_uncrashed_one(crashed: int) -> None:
    """Whatever part of batch `crashed` landed, once the restarted stage has replayed that
    batch its sources' clocks are those of the run that did not crash."""
    journal = Journal()
    starts: list[int] = []
    run(journal, BATCHES[: crashed + 1], starts)
    reference = AggregateStage(load_topology(DEMO), replayed(journal.log))
    want = reference.states.get(DISTRICT).state.clock
    assert want.newest
    end = len(journal.log)
    for landed in range(starts[crashed], end):
        restarted = AggregateStage(load_topology(DEMO), replayed(journal.log[:landed]))
        for i in BATCHES[crashed]:
            restarted.on_readings(DISTRICT, *MESSAGES[i])
        clock = restarted.states.get(DISTRICT).state.clock
        assert (clock.newest, clock.seen, clock.home) == (want.newest, want.seen, want.home)


def test_a_batch_writes_what_it_touched_whatever_the_districts_size() -> None:
    """A district with 30,000 registered sensors: registering them is written once; after
    that a reading writes a handful of small entries (the whole district was one record
    of megabytes before)."""
    journal = Journal()
    table = WindowTable(
        journal,
        lambda: WindowState(
            window=timedelta(minutes=1),
            allowed_lateness=timedelta(seconds=10),
            city_code="310000",
        ),  # fmt: skip
    )
    state = table.get(DISTRICT).state
    state.clock.expect([f"s{n}" for n in range(30_000)], to_micros(T0), None)
    table.persist()
    registered = len(journal.log)
    assert registered > 30_000
    batch, where = message(0)
    district = table.get(DISTRICT)
    for row, mark in zip(batch.rows(), district.marks(where), strict=True):
        assert mark
        district.state.add_row(row, False, "r:0")
    table.persist()
    written = journal.log[registered:]
    sizes = [len(orjson.dumps(value)) for _, value in written]
    # the intent; 8 cells (two windows: water-001 and the walk-in trail into 07:59, each
    # with its streets', the district's and the city's cell) in one group per level and
    # window; 4 sources; the head
    assert len([key for key, _ in written if GROUP_KEY in key]) == 2 * 3
    assert len(written) == 1 + 2 * 3 + len(SENSORS) + 1
    assert max(sizes) < 1024
    restored = WindowTable(replayed(journal.log), table._new).peek(DISTRICT)
    assert restored is not None
    assert len(restored.clock.newest) == 30_000 + len(SENSORS)
    assert restored.cells == district.state.cells


def fold(
    table: WindowTable, sensors: range, second: int, areas: Callable[[int], AdminCodes]
) -> None:
    """One pm25 reading of each sensor `s<n>` at T0 + `second`, in areas `areas(n)`, folded
    into the district's state (none of them late)."""
    district = table.get(DISTRICT)
    for n in sensors:
        reading = Reading(
            event_id=f"s{n}-{second}", sensor_id=f"s{n}", metric="pm25", value=n / 7,
            unit="ug/m3", observed_at=T0 + timedelta(seconds=second), areas=areas(n),
        )  # fmt: skip
        row = ReadingRow.of(reading, to_micros(T0) + second * 1_000_000)
        assert not district.state.add_row(row, False, "r:0")


def street(n: int) -> AdminCodes:
    """Sensor `s<n>`'s areas: a street of its own in the district."""
    return AdminCodes(district=DISTRICT, street=f"st{n}")


def thousand_streets() -> tuple[Journal, WindowTable]:
    """A journaled table whose first batch is 1,000 sensors on streets of their own."""
    journal = Journal()
    table = WindowTable(
        journal,
        lambda: WindowState(
            window=timedelta(minutes=1), allowed_lateness=timedelta(seconds=10),
            city_code="310000",
        ),
    )  # fmt: skip
    fold(table, range(1_000), 1, street)
    table.persist()
    return journal, table


def test_a_batch_rewrites_the_groups_its_cells_first_changed_in() -> None:
    """1,000 sensors report in turn, then the first 100 again within the window: their
    street cells first changed together, so the second batch rewrites one group of the
    window's five street groups, with the district's and the city's (each level keeps to
    groups of its own). (Cells hashed into groups, as before, put the 100 in every group:
    each batch rewrote about the whole window.)"""
    journal, table = thousand_streets()
    first = [key for key, _ in journal.log if GROUP_KEY in key]
    assert len(first) == -(-1_000 // window_table.CELLS_PER_GROUP) + 2 == 7
    before = len(journal.log)
    fold(table, range(100), 31, street)
    table.persist()
    again = [key for key, _ in journal.log[before:] if GROUP_KEY in key]
    # the city's first group (index 0), the district's (1) and the streets' (2)
    firsts = {key for key in first if key.rsplit("\x1e", 1)[1] in {"0", "1", "2"}}
    assert len(again) == len(firsts) == 3
    assert set(again) == firsts, (again, first)
    restored = WindowTable(replayed(journal.log), table._new).peek(DISTRICT)
    assert restored is not None
    assert restored.cells == table.get(DISTRICT).state.cells


def stored_copies(backing: dict[str, Any]) -> int:
    """How many cell copies the stored groups hold, newest or not."""
    return sum(len(value[1]) for key, value in backing.items() if GROUP_KEY in key)


def test_a_cell_changed_later_is_written_alone_not_with_its_group() -> None:
    """1,000 streets report, then one sensor in a hundred again within the window: the
    second batch writes those 10 street cells (one new group) and the district's and
    the city's, not the five groups of 200 they first changed in (1,002 cells before)."""
    journal, table = thousand_streets()
    before = len(journal.log)
    fold(table, range(0, 1_000, 100), 31, street)
    table.persist()
    again = [value for key, value in journal.log[before:] if GROUP_KEY in key]
    assert sorted(len(members) for _, members in again) == [1, 1, 10]
    restored = WindowTable(replayed(journal.log), table._new).peek(DISTRICT)
    assert restored is not None
    assert restored.cells == table.get(DISTRICT).state.cells


def test_copies_stay_under_twice_the_cells_and_each_change_is_written_about_once() -> None:
    """Batch after batch changing a few cells of every group: the stored copies never
    reach twice the open cells (groups mostly of older copies are rewritten or deleted),
    and the cells written are at most twice the cells changed."""
    journal, table = thousand_streets()
    before = len(journal.log)
    changed = 0
    for k in range(57):
        fold(table, range(k % 50, 1_000, 50), 2 + k, street)
        changed += 20 + 2  # its street cells, the district's and the city's
        table.persist()
        open_cells = len(table.get(DISTRICT).state.cells)
        assert stored_copies(journal) < 2 * open_cells, k
    written = sum(
        len(value[1]) for key, value in journal.log[before:] if value and GROUP_KEY in key
    )
    assert written <= 2 * changed
    restored = WindowTable(replayed(journal.log), table._new).peek(DISTRICT)
    assert restored is not None
    assert restored.cells == table.get(DISTRICT).state.cells


def test_a_grid_cell_is_not_rewritten_when_the_district_changes() -> None:
    """With a grid level most cells take one sensor's reading and never change again in
    their window, while the district's cell changes in every batch: each level keeps to
    groups of its own, so a later batch rewrites the district's cell and writes its new
    grid cells in a group of their own, not the grid cells of the first batch."""
    journal = Journal()
    table = WindowTable(
        journal,
        lambda: WindowState(
            window=timedelta(minutes=1), allowed_lateness=timedelta(seconds=10),
            city_code="310000", levels=(AreaLevel.grid, AreaLevel.district),
        ),
    )  # fmt: skip

    def feed(sensors: range, second: int) -> list[Any]:
        fold(table, sensors, second, lambda n: AdminCodes(district=DISTRICT, grid=f"g{n}"))
        before = len(journal.log)
        table.persist()
        return [value for key, value in journal.log[before:] if GROUP_KEY in key]

    first = feed(range(300), 1)
    assert sorted(len(members) for _, members in first) == [1, 100, 200]
    again = feed(range(300, 310), 31)
    # the district's cell, and the 10 new grid cells (the group of 100 is not rewritten)
    assert sorted(len(members) for _, members in again) == [1, 10]
    restored = WindowTable(replayed(journal.log), table._new).peek(DISTRICT)
    assert restored is not None
    assert restored.cells == table.get(DISTRICT).state.cells


def test_groups_of_the_hashed_layout_are_read_and_rewritten() -> None:
    """A running deployment upgrades from the layout that hashed cells into groups: its
    stored groups are read, their cells written in arrival groups by the next batch and
    the old entries deleted; the rows are those of a run that never changed layout."""
    reference = by_key(run({}, BATCHES))
    backing: dict[str, Any] = {}
    half = len(BATCHES) // 2
    rows: list[StoreRow] = []
    first = AggregateStage(load_topology(DEMO), backing)
    for batch in BATCHES[:half]:
        for i in batch:
            rows += first.on_readings(DISTRICT, *MESSAGES[i])
        first.persist()
    # As the previous version stored them: `c␞start␞shards␞index`, one group a window
    # (a few cells a window: this layout's groups of its levels, merged).
    for key in [key for key in backing if GROUP_KEY in key]:
        district, own = key.split(GROUP_KEY)
        start, _ = own.split("\x1e")
        gen, members = backing.pop(key)
        merged = backing.setdefault(f"{district}\x1fc\x1e{start}\x1e1\x1e0", [gen, []])
        merged[0] = max(merged[0], gen)
        merged[1] += members
    old = {key for key in backing if "\x1fc\x1e" in key}
    assert old
    second = AggregateStage(load_topology(DEMO), backing)
    assert second.states.get(DISTRICT).stale
    for batch in BATCHES[half:]:
        for i in batch:
            rows += second.on_readings(DISTRICT, *MESSAGES[i])
        second.persist()
    rows += second.finish()
    assert not old & set(backing)  # the old layout's entries are gone
    assert by_key(rows) == reference
    assert len(rows) == len(reference)


def test_a_district_saved_whole_by_an_earlier_version_is_read_and_rewritten() -> None:
    """A running deployment upgrades: its one-entry district (snapshot version 2) is read,
    and the next batch writes it in the new layout, counting on from where it stood."""
    old = WindowState(
        window=timedelta(minutes=1), allowed_lateness=timedelta(seconds=10), city_code="310000"
    )
    batch, where = message(0)
    for row in batch.rows():
        old.add_row(row, False, "r:0")
    backing: dict[str, Any] = {DISTRICT: {"state": old.to_dict(), "offsets": {"r:0": 3}}}
    stage = AggregateStage(load_topology(DEMO), backing)
    assert stage.on_readings(DISTRICT, *message(0)) == []  # offsets 0..3: applied before
    stage.persist()
    assert orjson.loads(orjson.dumps(backing[DISTRICT]))["state"]["version"] == 4
    assert any(GROUP_KEY in key for key in backing)  # its cells, in arrival groups
    rows = by_key(AggregateStage(load_topology(DEMO), backing).finish())
    assert rows[("district", DISTRICT, "pm25", T0)].count == 2  # aq-001 and noise-001
