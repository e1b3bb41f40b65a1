"""A bounded, time-windowed duplicate detector for event ids.

Why: producers retry and Kafka delivers at least once, so the same reading can arrive twice
within seconds; counting it twice would skew aggregates and detection counts. The filter
remembers ids seen within ``window`` seconds (at most ``max_entries`` of them; the oldest
are forgotten first), so memory is bounded whatever the input rate. It is best effort by
design: an id older than the window, or pushed out by the size bound, or seen by another
worker (partitions are keyed by sensor, so that is rare) passes again.

O(1) per event: a set of ids, a deque of the ids in arrival order and a deque of
``[time, how many ids]`` runs beside it (a batch's ids share the time the caller read once,
so a run per batch rather than a (time, id) tuple per id: 100,000 ids held 6 MB of tuples);
expiry pops from the deques' fronts. (Popping the front of a dict is not O(1): its
iteration scans the slots of the entries deleted before, which made expiry quadratic
under load.) ``now`` is the caller's clock (processing time, non-decreasing); a clock that
goes backwards only delays expiry, it never forgets an id early.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DuplicateFilter"]


class DuplicateFilter:
    """Remember event ids for ``window`` seconds, at most ``max_entries`` ids."""

    __slots__ = ("_clock", "_max", "_order", "_runs", "_seen", "_window", "duplicates")

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
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self._runs: deque[list[Any]] = deque()
        """``[time, count]``: the next `count` ids of `_order` were first seen at `time`."""
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def now(self) -> float:
        """The filter's clock (a caller may read it once for a whole batch)."""
        return self._clock()

    def _expire(self, now: float) -> None:
        order, runs, seen = self._order, self._runs, self._seen
        horizon = now - self._window
        while runs and runs[0][0] <= horizon:
            _, count = runs.popleft()
            for _ in range(count):
                seen.discard(order.popleft())
        while len(order) > self._max:
            seen.discard(order.popleft())
            run = runs[0]
            run[1] -= 1
            if not run[1]:
                runs.popleft()

    def seen(self, event_id: str, now: float | None = None) -> bool:
        """True when ``event_id`` was seen within the window (then it is a duplicate).

        A first sighting is remembered; a duplicate does not extend the window.
        """
        at = self._clock() if now is None else now
        self._expire(at)
        if event_id in self._seen:
            self.duplicates += 1
            return True
        self._seen.add(event_id)
        self._order.append(event_id)
        runs = self._runs
        if runs and runs[-1][0] == at:
            runs[-1][1] += 1
        else:
            runs.append([at, 1])
        if len(self._order) > self._max:
            self._expire(at)
        return False

    def clear(self) -> None:
        """Forget everything (e.g. after a partition is revoked)."""
        self._seen.clear()
        self._order.clear()
        self._runs.clear()
