"""Aggregation's per-district window states kept as many table entries, so that a batch
writes what it touched and a replay after a crash counts every reading exactly once.

Why many entries: one entry per district held every open cell and every source's clock;
with the full city's 26,000 sensors in one district that record passed 2.8 MB (more than a
topic accepts) and every batch re-wrote it whole. Now a district is:

- a head (table key: the district), written last: the generation `gen`, the positions
  applied (`offsets`), the raw partitions' progress and the late count;
- an intent (`<district>␟i`), written first: the generation being written, the positions
  it covers, and the watermark at its end (every window ending by then is closed);
- the open window cells in groups (`<district>␟g␞start␞index`: one window's cells of one
  level, at most `CELLS_PER_GROUP` a group), each with the generation that wrote it, and
  deleted in the batch its window closes (a window opened and closed between two writes
  is never stored). A cell's newest copy is the one that counts: a batch writes the cells
  it changed either by rewriting their group whole (when they are at least half of it) or
  as copies in a new group, leaving older copies behind; a group left mostly holding
  older copies is rewritten with its current cells only;
- one entry per source changed (`<district>␟s␞source`, the area's registered sensors
  included, once): what the clock holds of it.

Why this order: every entry of a district goes to one changelog partition, and the
outputs producer sends a partition's records in order, so a crash leaves a prefix of a
batch's records. If the intent of generation g is newer than the head, batch g landed in
part, and its readings are replayed by these rules: a reading whose window ended by the
intent's watermark is skipped (its window's row was written, with it or without it as
late, before the changelog), and a cell whose newest copy generation g wrote already
holds the batch (skipped too); anything else was not applied (and, its window still open,
was not late either). A stored group of a window that ended by then is dropped at load.
Source clocks take the newest of what they see, so re-reading a batch leaves them as it
left them. Without this a replayed reading could be counted twice, or dropped as late and
a closed window re-emitted without it.

Why copies rather than rewriting a group whenever one of its cells changes: a batch
of a backlog (a worker catching up, many windows open while the slowest partition's
sources hold the watermark back) changes a few cells of many groups, and rewriting them
whole dumped about four cells per cell changed (8.9 cell dumps a reading with gateway
input, the largest cost of the analyze agent after the stages themselves). With copies a
changed cell is dumped once, plus at most once more when its old group is compacted, and
the stored copies stay under twice the open cells. The previous layout hashed cells into
groups (`<district>␟c␞start␞shards␞index`); groups of that layout are read, their cells
rewritten in this one by the next batch, and deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Container, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.aggregates.accumulator import Accumulator
from pipeline.aggregates.watermark import SourceEntry
from pipeline.aggregates.windows import Key, WindowState
from pipeline.engine.emit import Position
from pipeline.engine.state import STATE_KEY_SEPARATOR, news, state_table_key

__all__ = ["APPLY", "REPLAYED", "SKIP", "WindowTable"]

_PART = "\x1e"
_INTENT = "i"
_GROUP = f"g{_PART}"
_HASHED = f"c{_PART}"  # the previous layout's groups (version 3): read and rewritten
_SOURCE = f"s{_PART}"
VERSION = 4

#: What a reading's position says about it (`WindowTable.marks`).
SKIP, REPLAYED, APPLY = 0, 1, 2


#: Cells per group entry at most: a group of ~200 cells is ~15 KB. Why groups: one record
#: per cell made ~1.7 changelog records per reading, and Faust's recovery after a
#: rebalance reads a changelog at its per-event speed (two workers ran slower than one).
CELLS_PER_GROUP = 200

Group = tuple[int, int]
"""(window start, group index)."""

#: Each level's groups of a window take the indices `slot + n * _SLOTS` (`District.place`).
_LEVEL_SLOT = {"city": 0, "district": 1, "street": 2, "grid": 3}
_SLOTS = len(_LEVEL_SLOT)


def group_name(start: int, index: int) -> str:
    """A group's own part of its table key (after `<district>␟g␞`)."""
    return f"{start}{_PART}{index}"


def _cell_dump(cell: Key, acc: Accumulator) -> list[Any]:
    level, area, metric, _ = cell
    return [level, area, metric, acc.count, list(acc.partials), acc.min, acc.max, acc.breaches]


def _cell_load(start: int, data: list[Any]) -> tuple[Key, Accumulator]:
    level, area, metric, count, partials, low, high, breaches = data
    acc = Accumulator(
        count=int(count), partials=[float(p) for p in partials], min=float(low),
        max=float(high), breaches=int(breaches),
    )  # fmt: skip
    return (str(level), str(area), str(metric), start), acc


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
    groups: dict[Group, set[Key]] = field(default_factory=dict)
    """The open cells of each group."""
    newest: dict[tuple[int, int], int] = field(default_factory=dict)
    """(window start, level slot) -> the highest group index that level has used in that
    window (its new cells fill that group)."""
    stored: dict[Group, int] = field(default_factory=dict)
    """Groups that have an entry in the backing, with how many cell copies it holds (its
    cells' newest copies and older ones)."""
    stale: list[str] = field(default_factory=list)
    """Group entries (own keys) to delete with the next write: closed, or of the previous
    layout."""
    changed: bool = False

    def closed_by(self, window_end_us: int) -> bool:
        """Whether a replayed reading's window (ending at `window_end_us`) was closed by
        the end of the pending batch."""
        return self.closed_through is not None and window_end_us <= self.closed_through

    def marks(self, where: Sequence[Position | None]) -> list[int]:
        """For each reading at `where` (in order along each partition): SKIP (applied
        before), REPLAYED (of the pending batch: skip the cells holding it) or APPLY."""
        new = news(self.offsets, where)
        pending = self.pending
        if pending is None:
            return [APPLY if fresh else SKIP for fresh in new]
        return [
            SKIP if not fresh
            else REPLAYED if position is not None and position.offset <= pending.get(
                position.partition, -1)
            else APPLY
            for fresh, position in zip(new, where, strict=True)
        ]  # fmt: skip

    def place(self, start: int, level: str, made: Container[Group]) -> int:
        """The group a cell of window `start` at `level` is written to when it leaves its
        group or has none: the newest group of that level in that window if this batch
        `made` it and it is not full, else a new one (an index never used before for
        `start`, so no entry about to be deleted is written again).

        Why a level's cells keep to groups of their own: a district or street cell changes
        in every batch of its window, a grid cell in few (often one: a sensor or two per
        cell). Mixed in one group, when groups were rewritten whole on any change, every
        batch rewrote the grid cells next to a changing street (1.7 cells dumped per cell
        changed, measured in a saturated worker); kept apart, a level's cells tend to
        change together, and a group is rewritten in place rather than copied from."""
        slot = _LEVEL_SLOT.get(level, 0)
        index = self.newest.get((start, slot), slot - _SLOTS)
        members = self.groups.get((start, index))
        if (start, index) not in made or members is None or len(members) >= CELLS_PER_GROUP:
            index += _SLOTS
            self.newest[(start, slot)] = index
        return index

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

    def __init__(self, backing: MutableMapping[str, Any], new: Callable[[], WindowState]) -> None:
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
        """Intent, changed groups (`[gen, [[level, area, metric, count, partials, min,
        max, breaches], ...]]`), changed sources (`[gen, [newest, seen, home]]`), the
        deletions of closed windows' groups, then the head."""
        backing, state = self.backing, district.state
        gen = district.gen = district.gen + 1
        changed, closed = state.drain()
        backing[state_table_key(key, _INTENT)] = {
            "gen": gen, "offsets": dict(district.offsets),
            "watermark": state.clock.watermark(state.progress),
        }  # fmt: skip
        cells, groups, stored = state.cells, district.groups, district.stored
        at_group = state_table_key(key, _GROUP)
        writing = _groups_to_write(district, cells, changed)
        for group in writing:
            members = groups[group]
            backing[at_group + group_name(*group)] = [
                gen, [_cell_dump(cell, cells[cell]) for cell in members],
            ]  # fmt: skip
            stored[group] = len(members)
        at_source = state_table_key(key, _SOURCE)
        for source, now in state.clock.drain():
            backing[at_source + source] = [gen, now]
        for group in [group for group in groups if group[0] in closed]:
            del groups[group]
            if stored.pop(group, None) is not None:
                district.stale.append(_GROUP + group_name(*group))
        for name in district.stale:
            try:
                del backing[state_table_key(key, name)]
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
        kept: dict[Key, int] = {}
        for own in own_keys:
            if own.startswith((_GROUP, _HASHED)):
                entry = backing[state_table_key(key, own)]
                _load_group(district, own, entry, pending_gen, kept)
            elif own.startswith(_SOURCE):
                _, now = backing[state_table_key(key, own)]
                state.clock.load(own[len(_SOURCE) :], _source_load(now))
        return district


def _groups_to_write(
    district: District, cells: dict[Key, Accumulator], changed: list[Key]
) -> list[Group]:
    """The groups a batch writes for its `changed` cells, in the order they are written,
    with each cell placed in the group it is written in (see the module docstring).

    A changed cell's group is rewritten whole if the batch changed at least half of its
    cells; otherwise the changed cells leave it for a group this batch makes, and it is
    rewritten with its remaining cells too once those are fewer than half of the copies
    its entry holds. So a cell is dumped at most about twice per change, and copies stay
    under twice the cells. The groups made are written first: a rewrite that drops a
    cell's older copy must follow its newer one (a crash leaves a prefix of the
    records)."""
    groups, stored = district.groups, district.stored
    leaving: dict[Group, list[Key]] = {}
    placing: list[Key] = []
    for cell in changed:
        index = cells[cell].group
        if index < 0:
            placing.append(cell)
        else:
            leaving.setdefault((cell[3], index), []).append(cell)
    rewriting: list[Group] = []
    for group, moved in leaving.items():
        members = groups[group]
        if 2 * len(moved) >= len(members):
            rewriting.append(group)
            continue
        members.difference_update(moved)
        placing += moved
        if 2 * len(members) < stored.get(group, 0):
            rewriting.append(group)
    by_level: dict[tuple[int, str], list[Key]] = {}
    for cell in placing:
        by_level.setdefault((cell[3], cell[0]), []).append(cell)
    made: dict[Group, None] = {}
    for (start, level), placed in by_level.items():
        done = 0
        while done < len(placed):
            index = district.place(start, level, made)
            group = (start, index)
            members = groups.setdefault(group, set())
            chunk = placed[done : done + CELLS_PER_GROUP - len(members)]
            for cell in chunk:
                cells[cell].group = index
            members.update(chunk)
            made[group] = None
            done += len(chunk)
    return [*made, *rewriting]


def _load_group(
    district: District, own: str, entry: list[Any], pending_gen: int, kept: dict[Key, int]
) -> None:
    """Read one stored group: its cells whose copy here is the newest so far (`kept`: the
    generation of each cell's copy read; the pending batch's: holding it), or, when its
    window was closed by the batch that landed in part, nothing (it is deleted). A group
    of the previous, hashed layout is deleted and its cells are written in this one."""
    hashed = own.startswith(_HASHED)
    parts = own[len(_GROUP) :].split(_PART)  # both prefixes are two characters long
    start, index = int(parts[0]), -1
    if not hashed:
        index = int(parts[1])
        slot = (start, index % _SLOTS)
        district.newest[slot] = max(index, district.newest.get(slot, -1))
    closed = district.closed_by(start + district.state.window_us)
    if hashed or closed:
        district.stale.append(own)  # deleted with the next write
    if closed:
        return
    gen, members = int(entry[0]), entry[1]
    if not hashed:
        district.stored[(start, index)] = len(members)
        district.groups.setdefault((start, index), set())
    cells, changed, groups = district.state.cells, district.state.changed, district.groups
    for data in members:
        cell, acc = _cell_load(start, data)
        if kept.get(cell, -1) >= gen:
            continue  # an older copy (or this one's twin in a hashed group)
        older = cells.get(cell)
        if older is not None and older.group >= 0:
            groups[(start, older.group)].discard(cell)
        kept[cell] = gen
        acc.group = index
        cells[cell] = acc
        if gen == pending_gen:
            district.holding.add(cell)
        if hashed:
            changed[cell] = None  # placed in a group of this layout by the next write
        else:
            groups[(start, index)].add(cell)


def _migrated(head: dict[str, Any]) -> District:
    """A district saved whole by an earlier version (one entry): every cell and source is
    written in this layout by the next batch."""
    state = WindowState.from_dict(head["state"])
    state.changed = dict.fromkeys(state.cells)
    state.clock.touched = set(state.clock.newest)
    offsets = {str(p): int(o) for p, o in head.get("offsets", {}).items()}
    return District(state, offsets=offsets)
