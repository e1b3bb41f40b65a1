"""Event-time tumbling-window aggregates per (level, area, metric): a pure step over plain state.

Why our own accumulators and not Faust's windowed tables: Faust closes windows on wall-clock
time and does not replay closed windows after a crash (shared/notes/faust.md), so its
aggregates would not equal an offline recomputation. Here time is the readings' own
``observed_at`` and nothing else.

Model:
- Windows are tumbling, ``[start, start + window)``, aligned to the Unix epoch (UTC).
- watermark = max(max event time seen − allowed lateness, the highest watermark passed to
  ``advance``). A window is closed once watermark >= window end. A reading whose window is
  already closed (by that rule, whether or not ``advance`` ran yet) is *late*: ``add``
  returns True and the reading counts nowhere. Deciding lateness from the readings alone
  (not from when the caller happened to call ``advance``) keeps the output independent of
  the caller's batch boundaries.
- Accumulators are keyed by the final row key ``(level, area_code, metric, window_start)``
  and each reading updates every level it belongs to directly (street if it has one,
  district if it has one, the city always). We chose this over rolling street rows up at
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

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.aggregates.accumulator import Accumulator, window_micros, window_start
from pipeline.aggregates.codec import MICROSECOND, from_micros, to_micros
from pipeline.models import AggregateRow, AreaLevel, Reading

_US = MICROSECOND
_LEVEL_ORDER = {AreaLevel.city: 0, AreaLevel.district: 1, AreaLevel.street: 2}
DEFAULT_LEVELS: tuple[AreaLevel, ...] = (AreaLevel.street, AreaLevel.district, AreaLevel.city)

#: (level, area_code, metric, window_start in µs since the epoch)
Key = tuple[str, str, str, int]


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of ``WindowState.add_many``: rows of windows that closed, and late drops."""

    rows: list[AggregateRow]
    late: int


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
    max_event_us: int | None = None
    closed_us: int | None = None
    late_count: int = 0
    cells: dict[Key, Accumulator] = field(default_factory=dict)
    idle_timeout: timedelta | None = None
    sources: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._window_us = window_micros(self.window)
        if self.allowed_lateness < timedelta(0):
            msg = f"allowed_lateness must not be negative, got {self.allowed_lateness}"
            raise ValueError(msg)
        self.levels = tuple(AreaLevel(level) for level in self.levels)
        unsupported = set(self.levels) - set(_LEVEL_ORDER)
        if unsupported:
            msg = f"aggregation levels must be street, district or city, got {sorted(unsupported)}"
            raise ValueError(msg)
        self._lateness_us = self.allowed_lateness // _US
        idle = self.idle_timeout or max(10 * self.window, timedelta(minutes=10))
        self._idle_us = idle // _US
        self._heap: list[tuple[int, str]] = [(us, src) for src, us in self.sources.items()]
        heapq.heapify(self._heap)
        # The level names a reading's cells are keyed under (None: level not emitted),
        # looked up once here rather than per reading on the hot path.
        self._street = AreaLevel.street.value if AreaLevel.street in self.levels else None
        self._district = AreaLevel.district.value if AreaLevel.district in self.levels else None
        self._city = AreaLevel.city.value if AreaLevel.city in self.levels else None

    # -- the watermark -------------------------------------------------------------------

    def _slowest_active_us(self) -> int | None:
        """The newest event time of the slowest source that is not idle.

        Why per source: one district's sensors reach the worker through different raw
        partitions, which Faust consumes in bursts, so a catching-up sensor can trail its
        neighbours by minutes of event time. The windows wait for the slowest sensor that
        still reports (Flink's min-over-inputs watermark); a sensor silent for
        ``idle_timeout`` behind the newest reading stops holding them back.
        """
        if self.max_event_us is None:
            return None
        horizon = self.max_event_us - self._idle_us
        heap, sources = self._heap, self.sources
        while heap:
            micros, source = heap[0]
            if sources.get(source) != micros or micros < horizon:
                heapq.heappop(heap)  # superseded by a newer reading of that source, or idle
                continue
            return micros
        return self.max_event_us

    def expect(self, sources: Iterable[str], since: datetime) -> None:
        """Register sources known to report here (the registry's sensors of this area) as
        of ``since``, so windows wait for them from the start, up to ``idle_timeout``."""
        micros = to_micros(since)
        for source in sources:
            if source not in self.sources:
                self.sources[source] = micros
                heapq.heappush(self._heap, (micros, source))

    def _watermark_us(self) -> int | None:
        slowest = self._slowest_active_us()
        seen = None if slowest is None else slowest - self._lateness_us
        if seen is None:
            return self.closed_us
        if self.closed_us is None:
            return seen
        return max(seen, self.closed_us)

    @property
    def watermark(self) -> datetime | None:
        """The current watermark, or None before the first reading."""
        micros = self._watermark_us()
        return None if micros is None else from_micros(micros)

    @property
    def open_windows(self) -> int:
        """How many (level, area, metric, window) cells are accumulating."""
        return len(self.cells)

    # -- the step ------------------------------------------------------------------------

    def add(self, reading: Reading, breached: bool) -> bool:
        """Fold a reading into its windows; True (and nothing counted) when it is late."""
        event_us = to_micros(reading.observed_at)
        start = window_start(event_us, self._window_us)
        watermark = self._watermark_us()
        if watermark is not None and watermark >= start + self._window_us:
            self.late_count += 1
            return True
        if self.max_event_us is None or event_us > self.max_event_us:
            self.max_event_us = event_us
        source = reading.sensor_id
        if event_us > self.sources.get(source, -1):
            self.sources[source] = event_us
            heapq.heappush(self._heap, (event_us, source))
        metric = reading.metric
        value = reading.value
        areas = reading.areas
        if self._street is not None and areas.street is not None:
            self._cell((self._street, areas.street, metric, start)).add(value, breached)
        if self._district is not None and areas.district is not None:
            self._cell((self._district, areas.district, metric, start)).add(value, breached)
        if self._city is not None:
            self._cell((self._city, self.city_code, metric, start)).add(value, breached)
        return False

    def _cell(self, key: Key) -> Accumulator:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Accumulator()
        return cell

    def add_many(self, readings: list[tuple[Reading, bool]]) -> AddResult:
        """Add a batch of (reading, breached) and advance to the resulting watermark."""
        late = sum(1 for reading, breached in readings if self.add(reading, breached))
        return AddResult(rows=self.advance(), late=late)

    def advance(self, watermark: datetime | None = None) -> list[AggregateRow]:
        """Close and return every window whose end <= the watermark (sorted, deterministic).

        ``watermark`` may raise the watermark beyond what the readings imply (e.g. an idle
        source); it never lowers it.
        """
        if watermark is not None:
            given = to_micros(watermark)
            if self.closed_us is None or given > self.closed_us:
                self.closed_us = given
        current = self._watermark_us()
        if current is None:
            return []
        window_us = self._window_us
        closed = [key for key in self.cells if key[3] + window_us <= current]
        return self._emit(closed)

    def flush_all(self) -> list[AggregateRow]:
        """Close every open window (end of input); later readings for them count as late."""
        keys = list(self.cells)
        if keys:
            last_end = max(key[3] for key in keys) + self._window_us
            if self.closed_us is None or last_end > self.closed_us:
                self.closed_us = last_end
        return self._emit(keys)

    def _emit(self, keys: list[Key]) -> list[AggregateRow]:
        keys.sort(key=lambda k: (k[3], _LEVEL_ORDER[AreaLevel(k[0])], k[1], k[2]))
        rows: list[AggregateRow] = []
        for key in keys:
            cell = self.cells.pop(key)
            rows.append(self._row(key, cell))
        return rows

    def _row(self, key: Key, cell: Accumulator) -> AggregateRow:
        level, area_code, metric, start = key
        total = cell.total()
        return AggregateRow(
            window_start=from_micros(start),
            window_end=from_micros(start + self._window_us),
            level=AreaLevel(level),
            area_code=area_code,
            metric=metric,
            count=cell.count,
            sum=total,
            min=cell.min,
            max=cell.max,
            mean=total / cell.count,
            breaches=cell.breaches,
        )

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (durations and times as integer microseconds)."""
        return {
            "version": 1,
            "window_us": self._window_us,
            "allowed_lateness_us": self._lateness_us,
            "city_code": self.city_code,
            "levels": [level.value for level in self.levels],
            "max_event_us": self.max_event_us,
            "closed_us": self.closed_us,
            "late_count": self.late_count,
            "idle_timeout_us": self._idle_us,
            "sources": self._active_sources(),
            "cells": [
                [level, area, metric, start, c.count, list(c.partials), c.min, c.max, c.breaches]
                for (level, area, metric, start), c in self.cells.items()
            ],
        }

    def _active_sources(self) -> dict[str, int]:
        """Sources that can still hold windows back (idle ones are dropped from snapshots)."""
        if self.max_event_us is None:
            return {}
        horizon = self.max_event_us - self._idle_us
        return {src: us for src, us in self.sources.items() if us >= horizon}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowState:
        """Rebuild a state saved by ``to_dict``."""
        if data.get("version") != 1:
            msg = f"unsupported WindowState snapshot version {data.get('version')!r}"
            raise ValueError(msg)
        state = cls(
            window=timedelta(microseconds=int(data["window_us"])),
            allowed_lateness=timedelta(microseconds=int(data["allowed_lateness_us"])),
            city_code=str(data["city_code"]),
            levels=tuple(AreaLevel(level) for level in data["levels"]),
            max_event_us=data["max_event_us"],
            closed_us=data["closed_us"],
            late_count=int(data["late_count"]),
            idle_timeout=(
                timedelta(microseconds=int(data["idle_timeout_us"]))
                if data.get("idle_timeout_us") is not None
                else None
            ),
            sources={str(k): int(v) for k, v in data.get("sources", {}).items()},
        )
        for level, area, metric, start, count, partials, low, high, breaches in data["cells"]:
            state.cells[(str(level), str(area), str(metric), int(start))] = Accumulator(
                count=int(count),
                partials=[float(p) for p in partials],
                min=float(low),
                max=float(high),
                breaches=int(breaches),
            )
        return state
