"""One running accumulator of a tumbling window, shared by aggregates and area rules.

Why one: the aggregate windows (count / sum / min / max / mean / breaches per area and
metric) and the area windows of threshold rules (a statistic of every reading of an area)
fold the same readings into the same numbers; two copies had already drifted (one kept
``min``/``max`` with the builtins, the other with comparisons). Each user keeps its own
extra: aggregates count ``breaches``; area rules keep the smallest event ids as evidence.

- ``sum`` is kept as Shewchuk's exact partials (the algorithm behind ``math.fsum``), so the
  sum and mean are correctly rounded whatever the arrival order: they equal an offline
  ``math.fsum`` recomputation bit for bit, also after a replay in another order.
- The smallest event ids (sorted) are kept rather than the first ones, so the evidence does
  not depend on arrival order either.
- Windows are tumbling and aligned to the Unix epoch: :func:`window_start`.

Serialization stays with the users: each persists the fields it needs in its own snapshot
shape (the changelogs of running workers hold those shapes).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pipeline.aggregates.codec import MICROSECOND, add_exact

#: The statistics a window can be read as (an area rule's ``scope.statistic``).
STATISTICS = ("mean", "min", "max", "sum", "count")


def window_micros(width: timedelta) -> int:
    """A window width in whole microseconds (refused unless positive)."""
    micros = width // MICROSECOND
    if micros <= 0:
        msg = f"window must be positive, got {width}"
        raise ValueError(msg)
    return micros


def window_start(event_us: int, width_us: int) -> int:
    """Start (µs since the epoch) of the epoch-aligned tumbling window holding ``event_us``."""
    return event_us - event_us % width_us


@dataclass(slots=True)
class Accumulator:
    """Count, exact sum, min, max of one window; plus breaches or the smallest event ids."""

    count: int = 0
    partials: list[float] = field(default_factory=list)
    min: float = math.inf
    max: float = -math.inf
    breaches: int = 0
    event_ids: Sequence[str] = ()
    """The smallest event ids, sorted (area rules only: an aggregate cell keeps none, so
    the empty default is shared rather than a list per cell)."""
    group: int = field(default=-1, compare=False)
    """Aggregate cells only: the changelog group of its window the worker's window table
    placed it in (-1: not placed yet). Kept here, not in a map beside the cells: with the
    full city a worker holds a few hundred thousand open cells."""

    @classmethod
    def of(cls, value: float, breached: bool = False) -> Accumulator:
        """A window holding one value: what `add` makes of an empty one, in one step (with
        the grid level most aggregate cells hold one sensor's readings)."""
        # Positional: a keyword call to the generated __init__ cost twice as much, and
        # a grid level makes about one new cell per reading.
        return cls(1, [value], value, value, 1 if breached else 0)

    def add(self, value: float, breached: bool = False) -> None:
        """Fold one value in (the aggregates' hot path: comparisons, no builtin calls)."""
        self.count += 1
        add_exact(self.partials, value)
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if breached:
            self.breaches += 1

    def add_event(self, value: float, event_id: str, keep: int) -> None:
        """Fold one reading in and keep its id if it is among the ``keep`` smallest."""
        self.add(value)
        ids = self.event_ids
        if not isinstance(ids, list):
            ids = self.event_ids = list(ids)
        if len(ids) < keep or event_id < ids[-1]:
            bisect.insort(ids, event_id)
            del ids[keep:]

    @property
    def first_event_id(self) -> str:
        """The smallest event id seen ("" before any): the window's representative."""
        return self.event_ids[0] if self.event_ids else ""

    def total(self) -> float:
        """The correctly rounded sum of every value."""
        return math.fsum(self.partials)

    def statistic(self, name: str) -> float:
        """The window read as one of :data:`STATISTICS` (mean, min, max, sum, count)."""
        if name == "max":
            return self.max
        if name == "min":
            return self.min
        if name == "count":
            return float(self.count)
        total = self.total()
        return total if name == "sum" else total / self.count
