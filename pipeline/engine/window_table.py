"""Aggregation's per-district window states kept as many table entries, so that a batch
writes what it touched and a replay after a crash counts every reading exactly once.

Why many entries: one entry per district held every open cell and every source's clock;
with the full city's 26,000 sensors in one district that record passed 2.8 MB (more than a
topic accepts) and every batch re-wrote it whole. Now a district is:

- a head (table key: the district), written last: the generation `gen`, the positions
  applied (`offsets`), the raw partitions' progress and the late count;
- an intent (`<district>␟i`), written first: the generation being written, the positions
  it covers, and the watermark at its end (every window ending by then is closed);
- one entry per window cell changed (`<district>␟c␞level␞area␞metric␞start`) with the
  generation that wrote it; a stored cell that closes is deleted in the same batch (a
  cell opened and closed between two writes is never stored);
- one entry per source changed (`<district>␟s␞source`, the area's registered sensors
  included, once): what the clock holds of it.

Why this order: every entry of a district goes to one changelog partition, and the
outputs producer sends a partition's records in order, so a crash leaves a prefix of a
batch's records. If the intent of generation g is newer than the head, batch g landed in
part, and its readings are replayed by these rules: a reading whose window ended by the
intent's watermark is skipped (its window's row was written, with it or without it as
late, before the changelog), and a cell written by generation g already holds the batch
(skipped too); anything else was not applied (and, its window still open, was not late
either). A stored cell of a window that ended by then is dropped at load. Source clocks
take the newest of what they see, so re-reading a batch leaves them as it left them.
Without this a replayed reading could be counted twice, or dropped as late and a closed
window re-emitted without it.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.aggregates.accumulator import Accumulator
from pipeline.aggregates.watermark import SourceEntry
from pipeline.aggregates.windows import Key, WindowState
from pipeline.engine.emit import Position
from pipeline.engine.state import STATE_KEY_SEPARATOR, state_table_key

__all__ = ["APPLY", "REPLAYED", "SKIP", "WindowTable"]

_PART = "\x1e"
_INTENT = "i"
_CELL = f"c{_PART}"
_SOURCE = f"s{_PART}"
VERSION = 3

#: What a reading's position says about it (`WindowTable.marks`).
SKIP, REPLAYED, APPLY = 0, 1, 2


def cell_name(key: Key) -> str:
    """A cell's own part of its table key (after `<district>␟c␞`)."""
    level, area, metric, start = key
    return f"{level}{_PART}{area}{_PART}{metric}{_PART}{start}"


def _cell_of(name: str) -> Key:
    level, area, metric, start = name.split(_PART)
    return (level, area, metric, int(start))


def _acc_load(data: list[Any]) -> Accumulator:
    count, partials, low, high, breaches = data
    return Accumulator(
        count=int(count), partials=[float(p) for p in partials], min=float(low),
        max=float(high), breaches=int(breaches),
    )  # fmt: skip


def _source_load(data: list[Any]) -> SourceEntry:
    newest, seen, home = data
    return (int(newest), None if seen is None else int(seen), None if home is None else str(home))


@dataclass
class District:
    """One district's window state with what persisting and replaying it need."""

    state: WindowState
    offsets: dict[str, int] = field(default_factory=dict)
    """The last position applied per source partition (written in the head)."""
    gen: int = 0
    """The newest generation written (or found in an intent)."""
    pending: dict[str, int] | None = None
    """The positions of a batch that landed in part (an intent newer than the head)."""
    closed_through: int | None = None
    """The pending batch's closing watermark: its readings of windows ending by then are
    skipped."""
    holding: set[Key] = field(default_factory=set)
    """Cells that already hold the pending batch's readings."""
    stored: set[Key] = field(default_factory=set)
    """Open cells that have an entry in the backing (a cell opened and closed between two
    writes never gets one, nor a deletion)."""
    stale: list[Key] = field(default_factory=list)
    """Stored cells found closed at load, deleted by the next write."""
    changed: bool = False

    def closed_by(self, window_end_us: int) -> bool:
        """Whether a replayed reading's window (ending at `window_end_us`) was closed by
        the end of the pending batch."""
        return self.closed_through is not None and window_end_us <= self.closed_through

    def marks(self, where: Sequence[Position | None]) -> list[int]:
        """For each reading at `where` (in order along each partition): SKIP (applied
        before), REPLAYED (of the pending batch: skip the cells holding it) or APPLY."""
        offsets, pending = self.offsets, self.pending
        marks: list[int] = []
        for position in where:
            if position is None:
                marks.append(APPLY)
                continue
            partition, offset = position
            if offset <= offsets.get(partition, -1):
                marks.append(SKIP)
                continue
            offsets[partition] = offset
            replayed = pending is not None and offset <= pending.get(partition, -1)
            marks.append(REPLAYED if replayed else APPLY)
        return marks

    def settle(self) -> None:
        """Forget the pending batch once every one of its positions was replayed."""
        pending = self.pending
        if pending is not None and all(
            self.offsets.get(partition, -1) >= offset for partition, offset in pending.items()
        ):
            self.pending, self.closed_through, self.holding = None, None, set()


class WindowTable:
    """Districts' window states over a backing mapping (a dict in the dry run, a Faust
    table in the worker), loaded once per district, persisted as changed entries."""

    def __init__(
        self,
        backing: MutableMapping[str, Any],
        new: Callable[[], WindowState],
    ) -> None:
        self.backing = backing
        self._new = new
        self._districts: dict[str, District] = {}
        self._index: dict[str, list[str]] | None = None

    def get(self, key: str) -> District:
        """District `key` (loaded from the backing once, or new); marks it changed."""
        district = self._districts.get(key)
        if district is None:
            district = self._districts[key] = self._load(key)
        district.changed = True
        return district

    def peek(self, key: str) -> WindowState | None:
        """District `key`'s state without creating or marking it."""
        district = self._districts.get(key)
        if district is None and key in self._entries():
            district = self._districts[key] = self._load(key)
        return None if district is None else district.state

    def keys(self) -> list[str]:
        """Every district known locally (backing and memory)."""
        return sorted(set(self._entries()) | set(self._districts))

    def forget(self) -> None:
        """Drop what is in memory (after a rebalance another worker may own the keys)."""
        self._districts.clear()
        self._index = None

    def persist(self) -> int:
        """Write each changed district's entries in the order the module docstring gives;
        return how many districts."""
        written = 0
        for key, district in self._districts.items():
            if district.changed:
                self._write(key, district)
                district.changed = False
                written += 1
        return written

    # -- writing -----------------------------------------------------------------------

    def _write(self, key: str, district: District) -> None:
        """Entries are lists (a cell `[gen, count, partials, min, max, breaches]`, a closed
        marker `[gen]`, a source `[gen, now, before]`): a batch writes one per reading."""
        backing, state = self.backing, district.state
        gen = district.gen = district.gen + 1
        changed, closed = state.drain()
        backing[state_table_key(key, _INTENT)] = {
            "gen": gen, "offsets": dict(district.offsets),
            "watermark": state.clock.watermark(state.progress),
        }  # fmt: skip
        cells = state.cells
        at_cell = state_table_key(key, _CELL)
        stored = district.stored
        for name in changed:
            c = cells[name]
            backing[at_cell + cell_name(name)] = [
                gen, c.count, list(c.partials), c.min, c.max, c.breaches
            ]  # fmt: skip
            stored.add(name)
        at_source = state_table_key(key, _SOURCE)
        for source, now in state.clock.drain():
            backing[at_source + source] = [gen, now]
        closed = [name for name in closed if name in stored]
        stored.difference_update(closed)
        for name in (*closed, *district.stale):
            try:
                del backing[at_cell + cell_name(name)]
            except KeyError:
                pass  # a dict backing that never held it
        district.stale = []
        backing[key] = {"state": self._head(state, gen), "offsets": dict(district.offsets)}
        district.settle()

    @staticmethod
    def _head(state: WindowState, gen: int) -> dict[str, Any]:
        clock = state.clock
        return {
            "version": VERSION,
            "gen": gen,
            "late_count": state.late_count,
            "progress": dict(state.progress),
            "closed_us": clock.closed_us,
        }

    # -- loading -----------------------------------------------------------------------

    def _entries(self) -> dict[str, list[str]]:
        """Each district's table keys, from one pass over the backing."""
        if self._index is None:
            index: dict[str, list[str]] = {}
            for table_key in self.backing:
                district, _, own = table_key.partition(STATE_KEY_SEPARATOR)
                index.setdefault(district, []).append(own)
            self._index = index
        return self._index

    def _load(self, key: str) -> District:
        state = self._new()
        district = District(state)
        own_keys = self._entries().get(key, [])
        if not own_keys:
            return district
        backing = self.backing
        head = backing.get(key)
        if head is not None and head["state"].get("version") == 2:
            return _migrated(head)
        head_state = {} if head is None else head["state"]
        district.gen = int(head_state.get("gen", 0))
        district.offsets = {str(p): int(o) for p, o in (head or {}).get("offsets", {}).items()}
        intent = backing.get(state_table_key(key, _INTENT))
        pending_gen = -1
        if intent is not None and int(intent["gen"]) > district.gen:
            pending_gen = district.gen = int(intent["gen"])
            district.pending = {str(p): int(o) for p, o in intent["offsets"].items()}
            district.closed_through = intent.get("watermark")
        state.late_count = int(head_state.get("late_count", 0))
        state.progress = {str(p): int(us) for p, us in head_state.get("progress", {}).items()}
        state.clock.closed_us = head_state.get("closed_us")
        width = state.window_us
        for own in own_keys:
            if own.startswith(_CELL):
                entry = backing[state_table_key(key, own)]
                cell = _cell_of(own[len(_CELL) :])
                if district.closed_by(cell[3] + width):
                    district.stale.append(cell)  # closed by the batch that landed in part
                    continue
                if int(entry[0]) == pending_gen:
                    district.holding.add(cell)
                state.cells[cell] = _acc_load(entry[1:])
                district.stored.add(cell)
            elif own.startswith(_SOURCE):
                _, now = backing[state_table_key(key, own)]
                state.clock.load(own[len(_SOURCE) :], _source_load(now))
        return district


def _migrated(head: dict[str, Any]) -> District:
    """A district saved whole by an earlier version (one entry): every cell and source is
    written in this layout by the next batch."""
    state = WindowState.from_dict(head["state"])
    state.changed = set(state.cells)
    state.clock.touched = set(state.clock.newest)
    offsets = {str(p): int(o) for p, o in head.get("offsets", {}).items()}
    return District(state, offsets=offsets)
