"""The watermark of windows fed by many sources: it waits for the slowest source that still
reports, and a source that stopped reporting stops holding it back.

Why per source: one district's sensors reach a worker through different raw partitions,
read in bursts, so a catching-up sensor can trail its neighbours by minutes of event time;
the windows wait for it (Flink's min-over-inputs watermark). Why idleness in *arrival*
time: measured in event time from the newest reading, one reading stamped a day ahead
made every other sensor look idle, the watermark jumped, and every later reading of the
district was dropped as late. Arrival is the raw record's log-append time, which no
producer sets; a source is idle when nothing of it has arrived for `idle_us` while the
state kept receiving. Where arrival is unknown (a dry run without timestamps) no source
is ever idle: windows close when every source has passed them, or at the end of input.

So no single reading moves the watermark beyond the slowest active source, and readings
of in-order sources are never late, whatever the interleaving of their partitions.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

__all__ = ["SourceClock"]


class SourceClock:
    """Each source's newest event time and latest arrival; the watermark they allow."""

    __slots__ = ("_heap", "closed_us", "idle_us", "lateness_us", "newest", "now_us", "seen")

    def __init__(self, lateness_us: int, idle_us: int) -> None:
        self.lateness_us = lateness_us
        self.idle_us = idle_us
        self.newest: dict[str, int] = {}
        """Source -> its newest event time (µs)."""
        self.seen: dict[str, int] = {}
        """Source -> arrival (µs) of its latest reading; absent when unknown."""
        self.now_us: int | None = None
        """The newest arrival seen: the state's own processing clock."""
        self.closed_us: int | None = None
        """A watermark pushed from outside (end of input), never lowered."""
        self._heap: list[tuple[int, str]] = []

    def _idle(self, source: str, horizon: int | None) -> bool:
        if horizon is None:
            return False
        seen = self.seen.get(source)
        return seen is not None and seen < horizon

    def observe(self, source: str, event_us: int, arrived_us: int | None) -> None:
        """Count a reading of `source` (call after deciding it is not late)."""
        horizon = self._horizon()
        woke = self._idle(source, horizon)
        if arrived_us is not None:
            if self.now_us is None or arrived_us > self.now_us:
                self.now_us = arrived_us
            if arrived_us > self.seen.get(source, -1):
                self.seen[source] = arrived_us
        newest = self.newest.get(source)
        if newest is None or event_us > newest:
            self.newest[source] = event_us
            heapq.heappush(self._heap, (event_us, source))
        elif woke:  # back from idleness with nothing newer: it counts again at its newest
            heapq.heappush(self._heap, (newest, source))

    def expect(self, sources: Iterable[str], since_us: int, arrived_us: int | None) -> None:
        """Register sources known to report here (the registry's sensors of the area) as
        of `since_us`, so windows wait for them from the start, until they go idle."""
        for source in sources:
            if source not in self.newest:
                self.newest[source] = since_us
                heapq.heappush(self._heap, (since_us, source))
                if arrived_us is not None:
                    self.seen[source] = arrived_us

    def push(self, watermark_us: int) -> None:
        """Raise the watermark to at least `watermark_us` (the end of input)."""
        if self.closed_us is None or watermark_us > self.closed_us:
            self.closed_us = watermark_us

    def _horizon(self) -> int | None:
        return None if self.now_us is None else self.now_us - self.idle_us

    def slowest(self) -> int | None:
        """The newest event time of the slowest active source (None: no active source)."""
        horizon = self._horizon()
        heap, newest = self._heap, self.newest
        while heap:
            micros, source = heap[0]
            if newest.get(source) != micros or self._idle(source, horizon):
                heapq.heappop(heap)  # superseded by a newer reading of that source, or idle
                continue
            return micros
        return None

    def watermark(self) -> int | None:
        """The watermark: the slowest active source's newest time minus the lateness, or
        the pushed one if higher (None before anything is known)."""
        slowest = self.slowest()
        mark = None if slowest is None else slowest - self.lateness_us
        if self.closed_us is None:
            return mark
        return self.closed_us if mark is None else max(mark, self.closed_us)

    def sources(self) -> dict[str, int]:
        """Sources that can still hold the watermark back, with their newest time."""
        horizon = self._horizon()
        return {s: us for s, us in self.newest.items() if not self._idle(s, horizon)}

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot: active sources only (idle ones hold nothing back)."""
        active = self.sources()
        return {
            "newest": active,
            "seen": {s: us for s, us in self.seen.items() if s in active},
            "now_us": self.now_us,
            "closed_us": self.closed_us,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], lateness_us: int, idle_us: int) -> SourceClock:
        """Rebuild a clock saved by `to_dict`."""
        clock = cls(lateness_us, idle_us)
        clock.newest = {str(s): int(us) for s, us in data.get("newest", {}).items()}
        clock.seen = {str(s): int(us) for s, us in data.get("seen", {}).items()}
        clock.now_us = data.get("now_us")
        clock.closed_us = data.get("closed_us")
        clock._heap = [(us, s) for s, us in clock.newest.items()]
        heapq.heapify(clock._heap)
        return clock
