"""The watermark of windows fed by many sources: it waits for the slowest source that still
reports, and a source that stopped reporting stops holding it back.

Why per source: one district's sensors reach a worker through different raw partitions,
read in bursts, so a catching-up sensor can trail its neighbours by minutes of event time;
the windows wait for it (Flink's min-over-inputs watermark). No single reading moves the
watermark beyond the slowest active source, so one reading stamped a day ahead changes
nothing.

When is a source idle? When nothing of it arrived for `idle_us` *while its raw partition
kept delivering*: its partition's progress (the newest arrival, a log-append time, that
the intake has normalized from that partition) is more than `idle_us` past the source's
latest arrival. Measured on its own partition, a backlog (a restart, a broker outage) never
makes a source look idle: its records are behind in the same partition, and the progress
waits for them. A source whose partition is not known yet (a registered sensor that never
reported) is idle once every partition has moved `idle_us` past its registration. Where
arrival is unknown (a dry run without timestamps) no source is ever idle: windows close
when every source has passed them, or at the end of input.

Progress reaches a state with the readings batches of its key (the intake also sends a
batch with no readings, at most once a second, to a key that got none), so it always
follows the readings it covers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pipeline.models import ReadingRow

__all__ = ["NO_PARTITION", "Placed", "Progress", "SourceClock", "SourceEntry", "home_partition"]

#: The partition of a reading whose origin has none (a dry run's line with a timestamp).
NO_PARTITION = ""

SourceEntry = tuple[int, int | None, str | None]
"""What a clock holds of one source: newest event time, latest arrival, home partition."""

Progress = dict[str, int]
"""Raw partition (`topic:partition`) -> the newest arrival (µs) normalized from it."""


class Placed(Protocol):
    """Where a reading sits in its raw input (the engine's `Position`): its partition."""

    @property
    def partition(self) -> str: ...


def home_partition(row: ReadingRow, position: Placed | None) -> str | None:
    """The raw partition a reading came from, for idleness (None: arrival unknown)."""
    if row.arrived_us is None:
        return None
    return NO_PARTITION if position is None else position.partition


def merge_progress(into: Progress, update: Mapping[str, int]) -> bool:
    """Raise `into` to `update` partition by partition (progress never goes back);
    whether anything moved."""
    moved = False
    for partition, arrived in update.items():
        if arrived > into.get(partition, -1):
            into[partition] = arrived
            moved = True
    return moved


class SourceClock:
    """Each source's newest event time, latest arrival and partition; the watermark."""

    __slots__ = (
        "_heap", "closed_us", "home", "idle_us", "lateness_us", "newest", "seen", "touched",
    )  # fmt: skip

    def __init__(self, lateness_us: int, idle_us: int) -> None:
        self.lateness_us = lateness_us
        self.idle_us = idle_us
        self.newest: dict[str, int] = {}
        """Source -> its newest event time (µs)."""
        self.seen: dict[str, int] = {}
        """Source -> arrival (µs) of its latest reading, or of its registration."""
        self.home: dict[str, str] = {}
        """Source -> the raw partition its latest reading came from (absent: not known)."""
        self.closed_us: int | None = None
        """A watermark pushed from outside (end of input), never lowered."""
        self.touched: set[str] = set()
        """Sources changed since `drain`."""
        self._heap: list[tuple[int, str]] = []

    def idle(self, source: str, progress: Mapping[str, int]) -> bool:
        """Whether `source` has been silent for `idle_us` while its partition went on."""
        seen = self.seen.get(source)
        if seen is None or not progress:
            return False
        home = self.home.get(source)
        if home is None:
            return min(progress.values()) - seen > self.idle_us
        now = progress.get(home)
        return now is not None and now - seen > self.idle_us

    def observe(
        self,
        source: str,
        event_us: int,
        arrived_us: int | None,
        partition: str | None,
        progress: Mapping[str, int],
    ) -> None:
        """Count a reading of `source` (call after deciding it is not late)."""
        self.touched.add(source)
        newest = self.newest.get(source)
        newer = newest is None or event_us > newest
        # Whether it was idle is asked before its arrival moves, and only when it matters:
        # an in-order source's readings are newer, and this was a third of the call.
        woke = not newer and self.idle(source, progress)
        if arrived_us is not None:
            if arrived_us > self.seen.get(source, -1):
                self.seen[source] = arrived_us
            if partition is not None:
                self.home[source] = partition
        if newer:
            self.newest[source] = event_us
            heapq.heappush(self._heap, (event_us, source))
        elif woke and newest is not None:
            # Back from idleness with nothing newer: it counts again at its newest.
            heapq.heappush(self._heap, (newest, source))

    def expect(self, sources: Iterable[str], since_us: int, arrived_us: int | None) -> None:
        """Register sources known to report here (the registry's sensors of the area) as
        of `since_us`, so windows wait for them from the start, until they go idle."""
        for source in sources:
            if source not in self.newest:
                self.touched.add(source)
                self.newest[source] = since_us
                heapq.heappush(self._heap, (since_us, source))
                if arrived_us is not None:
                    self.seen[source] = arrived_us

    def push(self, watermark_us: int) -> None:
        """Raise the watermark to at least `watermark_us` (the end of input)."""
        if self.closed_us is None or watermark_us > self.closed_us:
            self.closed_us = watermark_us

    def slowest(self, progress: Mapping[str, int]) -> int | None:
        """The newest event time of the slowest active source (None: no active source)."""
        entry = self.slowest_entry(progress)
        return None if entry is None else entry[0]

    def slowest_entry(self, progress: Mapping[str, int]) -> tuple[int, str] | None:
        """The slowest active source's newest event time, and the source (None: none)."""
        heap, newest = self._heap, self.newest
        while heap:
            micros, source = entry = heap[0]
            if newest.get(source) != micros or self.idle(source, progress):
                heapq.heappop(heap)  # superseded by a newer reading of that source, or idle
                continue
            return entry
        return None

    def watermark(self, progress: Mapping[str, int]) -> int | None:
        """The watermark: the slowest active source's newest time minus the lateness, or
        the pushed one if higher (None before anything is known)."""
        return self.watermark_entry(progress)[0]

    def watermark_entry(
        self, progress: Mapping[str, int]
    ) -> tuple[int | None, str | None, int | None]:
        """The watermark, with the slowest active source and its newest time (None: no
        active source): what a batch needs to tell which reading can move the watermark."""
        slowest = self.slowest_entry(progress)
        micros, source = (None, None) if slowest is None else slowest
        mark = None if micros is None else micros - self.lateness_us
        if self.closed_us is not None and (mark is None or self.closed_us > mark):
            mark = self.closed_us
        return mark, source, micros

    def sources(self, progress: Mapping[str, int]) -> dict[str, int]:
        """Sources that can still hold the watermark back, with their newest time."""
        return {s: us for s, us in self.newest.items() if not self.idle(s, progress)}

    # -- persistence ---------------------------------------------------------------------

    def entry(self, source: str) -> SourceEntry | None:
        """What the clock holds of `source` (None: nothing)."""
        newest = self.newest.get(source)
        if newest is None:
            return None
        return (newest, self.seen.get(source), self.home.get(source))

    def load(self, source: str, entry: SourceEntry) -> None:
        """Set what the clock holds of `source` (an `entry` saved before)."""
        newest, seen, home = entry
        self.newest[source] = newest
        heapq.heappush(self._heap, (newest, source))
        if seen is not None:
            self.seen[source] = seen
        if home is not None:
            self.home[source] = home

    def drain(self) -> list[tuple[str, SourceEntry]]:
        """The sources changed since the last call, with what the clock holds of them."""
        changed = [(s, entry) for s in self.touched if (entry := self.entry(s)) is not None]
        self.touched = set()
        return changed

    def to_dict(self, progress: Mapping[str, int]) -> dict[str, Any]:
        """A JSON-able snapshot: active sources only (idle ones hold nothing back)."""
        active = self.sources(progress)
        return {
            "newest": active,
            "seen": {s: us for s, us in self.seen.items() if s in active},
            "home": {s: p for s, p in self.home.items() if s in active},
            "closed_us": self.closed_us,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], lateness_us: int, idle_us: int) -> SourceClock:
        """Rebuild a clock saved by `to_dict`."""
        clock = cls(lateness_us, idle_us)
        clock.newest = {str(s): int(us) for s, us in data.get("newest", {}).items()}
        clock.seen = {str(s): int(us) for s, us in data.get("seen", {}).items()}
        clock.home = {str(s): str(p) for s, p in data.get("home", {}).items()}
        clock.closed_us = data.get("closed_us")
        clock._heap = [(us, s) for s, us in clock.newest.items()]
        heapq.heapify(clock._heap)
        return clock
