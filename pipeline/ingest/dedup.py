"""A bounded, time-windowed duplicate detector for event ids.

Why: producers retry and Kafka delivers at least once, so the same reading can arrive twice
within seconds; counting it twice would skew aggregates and detection counts. The filter
remembers ids seen within ``window`` seconds (at most ``max_entries`` of them; the oldest
are forgotten first), so memory is bounded whatever the input rate. It is best effort by
design: an id older than the window, or pushed out by the size bound, or seen by another
worker (partitions are keyed by sensor, so that is rare) passes again.

O(1) per event: a dict in insertion order; expiry pops from the front. ``now`` is the
caller's clock (processing time, non-decreasing); a clock that goes backwards only delays
expiry, it never forgets an id early.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["DuplicateFilter"]


class DuplicateFilter:
    """Remember event ids for ``window`` seconds, at most ``max_entries`` ids."""

    __slots__ = ("_clock", "_max", "_seen", "_window", "duplicates")

    def __init__(
        self,
        window: float = 600.0,
        max_entries: int = 100_000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0 or max_entries <= 0:
            msg = "window and max_entries must be positive"
            raise ValueError(msg)
        self._window = float(window)
        self._max = int(max_entries)
        self._clock = clock
        self._seen: dict[str, float] = {}
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def now(self) -> float:
        """The filter's clock (a caller may read it once for a whole batch)."""
        return self._clock()

    def _expire(self, now: float) -> None:
        seen = self._seen
        horizon = now - self._window
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > horizon and len(seen) <= self._max:
                break
            del seen[oldest]

    def seen(self, event_id: str, now: float | None = None) -> bool:
        """True when ``event_id`` was seen within the window (then it is a duplicate).

        A first sighting is remembered; a duplicate does not extend the window.
        """
        at = self._clock() if now is None else now
        self._expire(at)
        if event_id in self._seen:
            self.duplicates += 1
            return True
        self._seen[event_id] = at
        if len(self._seen) > self._max:
            self._expire(at)
        return False

    def clear(self) -> None:
        """Forget everything (e.g. after a partition is revoked)."""
        self._seen.clear()
