"""Event-time tumbling-window aggregates per (level, area, metric): a pure step over plain state.

Why our own accumulators and not Faust's windowed tables: Faust closes windows on wall-clock
time and does not replay closed windows after a crash (shared/notes/faust.md), so its
aggregates would not equal an offline recomputation. Here time is the readings' own
``observed_at`` and nothing else.

Model:
- Windows are tumbling, ``[start, start + window)``, aligned to the Unix epoch (UTC).
- The watermark is the slowest active source's newest event time minus the allowed
  lateness (:class:`~pipeline.aggregates.watermark.SourceClock`: a source that has sent
  nothing for ``idle_timeout`` of arrival time stops counting), or the watermark passed to
  ``advance`` if higher. A window is closed once the watermark >= its end. A reading whose
  window is already closed is *late*: ``add`` returns True and it counts nowhere.
  Deciding lateness from the readings alone (not from when the caller happened to call
  ``advance``) keeps the output independent of the caller's batch boundaries, and an
  in-order source's readings are never late whatever the interleaving of sources.
- Accumulators are keyed by the final row key ``(level, area_code, metric, window_start)``
  and each reading updates every level it belongs to directly (grid cell, street and
  district if it has them, the city always). We chose this over rolling street rows up at
  close time because readings without a street (or without a district) must still count
  at the levels above, and a roll-up would need side accumulators for exactly those
  readings; three dict updates per reading are cheap and obviously correct.
- Each cell is an :class:`~pipeline.aggregates.accumulator.Accumulator` (the one area rules
  use too): exact sums, so the rows equal an offline ``math.fsum`` recomputation bit for
  bit, also after a replay that delivers the same readings in another order.
- The state is a plain dataclass that round-trips through a JSON-able dict
  (``to_dict``/``from_dict``) so the worker can persist it next to its offsets.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from pipeline.aggregates.accumulator import Accumulator, window_micros
from pipeline.aggregates.codec import MICROSECOND, from_micros, to_micros
from pipeline.aggregates.watermark import (
    NO_PARTITION,
    Placed,
    Progress,
    SourceClock,
    home_partition,
    merge_progress,
)
from pipeline.models import SCHEMA_VERSION, AreaLevel, Reading, ReadingRow, StoreRow

_US = MICROSECOND
_LEVEL_ORDER = {AreaLevel.city: 0, AreaLevel.district: 1, AreaLevel.street: 2, AreaLevel.grid: 3}
#: The `ReadingRow` field holding a reading's area code at each level (-1: the city).
_ROW_FIELD = {
    AreaLevel.street: ReadingRow._fields.index("street"),
    AreaLevel.district: ReadingRow._fields.index("district"),
    AreaLevel.grid: ReadingRow._fields.index("grid"),
    AreaLevel.city: -1,
}
DEFAULT_LEVELS: tuple[AreaLevel, ...] = (AreaLevel.street, AreaLevel.district, AreaLevel.city)

#: (level, area_code, metric, window_start in µs since the epoch)
Key = tuple[str, str, str, int]

_LEVEL = itemgetter(0)


_GRID = AreaLevel.grid.value


def in_row_order(keys: list[Key]) -> list[Key]:
    """`keys` in the order rows are emitted: by window start, level (city, district,
    street, grid: `_LEVEL_ORDER`), area code and metric."""
    windows = by_window(keys)
    ordered: list[Key] = []
    for start in sorted(windows):
        ordered += in_window_order(windows[start])
    return ordered


def by_window(keys: Iterable[Key]) -> dict[int, list[Key]]:
    """`keys` grouped by window start, each window's in the order given."""
    windows: dict[int, list[Key]] = {}
    for key in keys:
        windows.setdefault(key[3], []).append(key)
    return windows


def in_window_order(cells: list[Key]) -> list[Key]:
    """One window's `cells` in row order (`in_row_order`), sorted in place and returned.

    Why not a sort with a key function: building a key per cell was half the cost of
    ordering, and with a grid level a worker closes about one cell per reading. Within a
    window the keys sort natively by level, area and metric, and the level names sort
    alphabetically in `_LEVEL_ORDER` but for grid, which comes last: the grid cells are
    moved behind the streets.
    """
    cells.sort()
    first = bisect_left(cells, _GRID, key=_LEVEL)
    past = bisect_right(cells, _GRID, key=_LEVEL)
    if first == past:
        return cells
    return cells[:first] + cells[past:] + cells[first:past]


@dataclass
class WindowState:
    """Open windows and the watermark of one aggregation stream (serializable, no I/O).

    ``city_code`` is the topology's city area code (readings carry only district/street);
    ``levels`` are the area levels to emit (topology.aggregation.levels).
    """

    window: timedelta
    allowed_lateness: timedelta
    city_code: str
    levels: tuple[AreaLevel, ...] = DEFAULT_LEVELS
    late_count: int = 0
    cells: dict[Key, Accumulator] = field(default_factory=dict)
    idle_timeout: timedelta | None = None
    clock: SourceClock = field(init=False)
    progress: Progress = field(default_factory=dict)
    """Raw partition -> newest arrival normalized (see `SourceClock`)."""
    changed: dict[Key, None] = field(default_factory=dict)
    """Open cells changed since `drain` (what a persist writes), in the order they first
    changed: a dict, not a set, so that the window table groups cells in arrival order."""
    closed: set[int] = field(default_factory=set)
    """The starts of the windows closed since `drain`."""
    keys_by_window: dict[int, list[Key]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """Window start -> the keys of its open cells, in the order they were made (None: not
    known yet, found by one pass over `cells`). Why: `advance` runs once per readings
    message, and scanning every open cell each time was the largest cost of small
    batches (a paced stream); with a grid level, finding the closing cells by a scan was
    still a tenth of closing them."""

    def __post_init__(self) -> None:
        self._window_us = window_micros(self.window)
        if self.allowed_lateness < timedelta(0):
            msg = f"allowed_lateness must not be negative, got {self.allowed_lateness}"
            raise ValueError(msg)
        self.levels = tuple(AreaLevel(level) for level in self.levels)
        unsupported = set(self.levels) - set(_LEVEL_ORDER)
        if unsupported:
            msg = (
                "aggregation levels must be grid, street, district or city, "
                f"got {sorted(unsupported)}"
            )
            raise ValueError(msg)
        idle = self.idle_timeout or max(10 * self.window, timedelta(minutes=10))
        self.clock = SourceClock(self.allowed_lateness // _US, idle // _US)
        # The levels a reading's cells are keyed under, each with the index of the row
        # field holding its area code (-1: the city's, from the topology), in the order a
        # reading updates them: found once here, not per reading on the hot path.
        self._row_levels = tuple(
            (level.value, _ROW_FIELD[level])
            for level in (AreaLevel.street, AreaLevel.district, AreaLevel.grid, AreaLevel.city)
            if level in self.levels
        )

    # -- the watermark -------------------------------------------------------------------

    @property
    def window_us(self) -> int:
        """The window width in microseconds."""
        return self._window_us

    @property
    def started(self) -> bool:
        """Whether any source is known yet (a new state registers the area's sensors)."""
        return bool(self.clock.newest)

    @property
    def sources(self) -> dict[str, int]:
        """Sources that can still hold windows back, with their newest event time (µs)."""
        return self.clock.sources(self.progress)

    def expect(
        self, sources: Iterable[str], since: datetime, arrived_us: int | None = None
    ) -> None:
        """Register sources known to report here (the registry's sensors of this area) as
        of ``since``, so windows wait for them from the start, until they go idle."""
        self.clock.expect(sources, to_micros(since), arrived_us)

    @property
    def watermark(self) -> datetime | None:
        """The current watermark, or None before the first reading."""
        micros = self.clock.watermark(self.progress)
        return None if micros is None else from_micros(micros)

    @property
    def open_windows(self) -> int:
        """How many (level, area, metric, window) cells are accumulating."""
        return len(self.cells)

    # -- the step ------------------------------------------------------------------------

    def add(self, reading: Reading, breached: bool, arrived_us: int | None = None) -> bool:
        """Fold a reading model into its windows; True (nothing counted) when it is late.
        With an arrival time and no partition, arrival order is the partition's."""
        if arrived_us is not None:
            merge_progress(self.progress, {NO_PARTITION: arrived_us})
        partition = None if arrived_us is None else NO_PARTITION
        return self.add_row(ReadingRow.of(reading, arrived_us), breached, partition)

    def add_row(
        self,
        row: ReadingRow,
        breached: bool,
        partition: str | None = None,
        holding: Container[Key] = (),
    ) -> bool:
        """Fold one reading (from raw `partition`) into its windows, except the cells
        `holding` it already (a replay); True (and nothing counted) when it is late."""
        event_us = row.observed_at_us
        start = event_us - event_us % self._window_us
        watermark = self.clock.watermark(self.progress)
        if watermark is not None and watermark >= start + self._window_us:
            self.late_count += 1
            return True
        self.clock.observe(row.sensor_id, event_us, row.arrived_us, partition, self.progress)
        self._fold(row, start, breached, holding)
        return False

    def add_rows(
        self,
        rows: Iterable[ReadingRow],
        where: Iterable[Placed | None],
        breached: Callable[[str, float], bool],
    ) -> int:
        """Fold a batch's readings (none of them a replay) into their windows, exactly as
        `add_row` would one by one (each from the raw partition `home_partition` gives);
        how many were late.

        Why a batch form: `add_row` asks the clock for the watermark at every reading (a
        fifth of its cost, profiled). Within a batch the progress is fixed, so a reading
        can move the watermark only through its own source: up, when it was the slowest;
        down, when its newest time is now below the slowest (a source new, or back from
        idleness). Only then is it asked again."""
        window_us, fold = self._window_us, self._fold
        clock, progress = self.clock, self.progress
        observe, newest = clock.observe, clock.newest
        watermark_entry = clock.watermark_entry
        mark, slow, slow_us = watermark_entry(progress)
        late = 0
        for row, position in zip(rows, where, strict=True):
            event_us = row.observed_at_us
            start = event_us - event_us % window_us
            if mark is not None and mark >= start + window_us:
                late += 1
                continue
            source = row.sensor_id
            observe(source, event_us, row.arrived_us, home_partition(row, position), progress)
            if source == slow or slow_us is None or newest[source] < slow_us:
                mark, slow, slow_us = watermark_entry(progress)
            fold(row, start, breached(row.metric, row.value))
        self.late_count += late
        return late

    def _fold(self, row: ReadingRow, start: int, hot: bool, holding: Container[Key] = ()) -> None:
        """Count one reading of window `start` in its cell at each level, but the cells
        `holding` it already (a replay)."""
        metric, value = row.metric, row.value
        cells, changed, windows = self.cells, self.changed, self.keys_by_window
        made: list[Key] | None = None  # the open cells of this reading's window
        for level, at in self._row_levels:
            code: str | None = row[at] if at >= 0 else self.city_code  # type: ignore[assignment]
            if code is None:
                continue
            key = (level, code, metric, start)
            if holding and key in holding:
                continue
            cell = cells.get(key)
            if cell is None:
                cells[key] = Accumulator.of(value, hot)
                if windows is not None:
                    if made is None:
                        made = windows.get(start)
                        if made is None:
                            made = windows[start] = []
                    made.append(key)
            else:
                cell.add(value, hot)
            changed[key] = None

    def advance(self, watermark: datetime | None = None) -> list[StoreRow]:
        """Close and return every window whose end <= the watermark (sorted, deterministic).

        ``watermark`` may raise the watermark beyond what the readings imply (end of
        input); it never lowers it.
        """
        if watermark is not None:
            self.clock.push(to_micros(watermark))
        current = self.clock.watermark(self.progress)
        if current is None:
            return []
        window_us = self._window_us
        windows = self.keys_by_window
        if windows is None:
            windows = self.keys_by_window = by_window(self.cells)
        ending = sorted(start for start in windows if start + window_us <= current)
        if not ending:
            return []
        keys: list[Key] = []
        for start in ending:
            keys += in_window_order(windows.pop(start))
        return self._emit(keys)

    def flush_all(self) -> list[StoreRow]:
        """Close every open window (end of input); later readings for them count as late."""
        keys = list(self.cells)
        if keys:
            self.clock.push(max(key[3] for key in keys) + self._window_us)
        self.keys_by_window = {}
        return self._emit(in_row_order(keys))

    def _emit(self, keys: list[Key]) -> list[StoreRow]:
        """The rows of the cells `keys` (in row order), which are closed and forgotten."""
        rows: list[StoreRow] = []
        append = rows.append
        spans: dict[int, tuple[datetime, datetime]] = {}  # a window's times, made once
        pop, unchanged, fsum = self.cells.pop, self.changed.pop, math.fsum
        width = self._window_us
        for key in keys:
            cell = pop(key)
            unchanged(key, None)
            level, area_code, metric, start = key
            span = spans.get(start)
            if span is None:
                span = spans[start] = (from_micros(start), from_micros(start + width))
                self.closed.add(start)
            # Not validated: every field comes from this state, whose inputs were
            # validated (finite values, known levels).
            total = fsum(cell.partials)
            count = cell.count
            append((
                span[0], span[1], level, area_code, metric, count, total, cell.min, cell.max,
                total / count, cell.breaches, SCHEMA_VERSION,
            ))  # fmt: skip
        return rows

    # -- persistence ---------------------------------------------------------------------

    def drain(self) -> tuple[list[Key], set[int]]:
        """The cells changed (still open) and the starts of the windows closed since the
        last call; the sources changed are the clock's (`SourceClock.drain`)."""
        changed, closed = list(self.changed), self.closed
        self.changed, self.closed = {}, set()
        return changed, closed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (durations and times as integer microseconds)."""
        return {
            "version": 2,
            "window_us": self._window_us,
            "allowed_lateness_us": self.clock.lateness_us,
            "city_code": self.city_code,
            "levels": [level.value for level in self.levels],
            "late_count": self.late_count,
            "idle_timeout_us": self.clock.idle_us,
            "clock": self.clock.to_dict(self.progress),
            "progress": dict(self.progress),
            "cells": [
                [level, area, metric, start, c.count, list(c.partials), c.min, c.max, c.breaches]
                for (level, area, metric, start), c in self.cells.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowState:
        """Rebuild a state saved by ``to_dict``."""
        if data.get("version") != 2:
            msg = f"unsupported WindowState snapshot version {data.get('version')!r}"
            raise ValueError(msg)
        state = cls(
            window=timedelta(microseconds=int(data["window_us"])),
            allowed_lateness=timedelta(microseconds=int(data["allowed_lateness_us"])),
            city_code=str(data["city_code"]),
            levels=tuple(AreaLevel(level) for level in data["levels"]),
            late_count=int(data["late_count"]),
            idle_timeout=timedelta(microseconds=int(data["idle_timeout_us"])),
        )
        state.clock = SourceClock.from_dict(
            data["clock"], state.clock.lateness_us, state.clock.idle_us
        )
        state.progress = {str(p): int(us) for p, us in data.get("progress", {}).items()}
        for level, area, metric, start, count, partials, low, high, breaches in data["cells"]:
            state.cells[(str(level), str(area), str(metric), int(start))] = Accumulator(
                count=int(count),
                partials=[float(p) for p in partials],
                min=float(low),
                max=float(high),
                breaches=int(breaches),
            )
        return state
