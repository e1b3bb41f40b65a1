"""Decoded stage states over any mapping: a plain dict in the dry run, a changelog-backed
Faust table in the worker. `persist()` writes back what changed, once per batch."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Generic, TypeVar

from pipeline.engine.emit import Position

S = TypeVar("S")

STATE_KEY_SEPARATOR = "\x1f"
"""Joins a record key and a state's own key into one state-table key.

Why: a district holds thousands of rule states; one table entry per state keeps what a
batch writes to the changelog proportional to what it touched (one entry per district
re-wrote every state of the district each time). The part before the separator is the
source record's key, which decides the changelog partition (`pipeline.engine.worker.tables`)."""


def state_table_key(record_key: str, state_key: str) -> str:
    """The table key of one state that records with `record_key` change."""
    return f"{record_key}{STATE_KEY_SEPARATOR}{state_key}"


def record_key_of(table_key: str) -> str:
    """The source record key a state-table key belongs to (partitioning)."""
    return table_key.split(STATE_KEY_SEPARATOR, 1)[0]


def news(offsets: dict[str, int], where: Sequence[Position | None]) -> list[bool]:
    """For events at `where` (in order, increasing along each partition), which come after
    the last position `offsets` holds for their partition; `offsets` moves on to them.
    An event with no position (a dry run's) is always new. The offsets are looked up once
    per run of one partition."""
    marks: list[bool] = []
    append = marks.append
    current: str | None = None
    last = -1
    for position in where:
        if position is None:
            append(True)
            continue
        partition, offset = position
        if partition != current:
            if current is not None:
                offsets[current] = last
            current = partition
            last = offsets.get(partition, -1)
        if offset <= last:
            append(False)
        else:
            append(True)
            last = offset
    if current is not None:
        offsets[current] = last
    return marks


class KeyedStates(Generic[S]):
    """Decoded states over a backing mapping; `persist()` writes back what changed.

    Why a cache: decoding a state per record costs more than the record's evaluation; the
    worker decodes a key once, mutates the object, and writes it back once per batch.

    Why offsets: a worker killed after its table changelog was flushed but before its
    consumer offsets were committed re-reads records whose effect the table already holds.
    Each key remembers the last offset applied per source topic-partition (a key's records
    always come from one partition), so `already_applied` lets a stage skip such a replay
    and the state changes exactly once per record.
    """

    def __init__(
        self,
        backing: MutableMapping[str, Any],
        load: Callable[[dict[str, Any]], S],
        dump: Callable[[S], dict[str, Any]],
    ) -> None:
        self.backing = backing
        self._load = load
        self._dump = dump
        self._cache: dict[str, S] = {}
        self._applied: dict[str, dict[str, int]] = {}
        """Source partition -> key -> the last offset applied to the key's state. By
        partition rather than by key: a key's records come from one partition, so a dict
        per key (100,000s of them) would each hold one entry."""
        self._dirty: set[str] = set()

    def _decode(self, key: str) -> S | None:
        stored = self.backing.get(key)
        if stored is None:
            return None
        state = self._cache[key] = self._load(stored["state"])
        for partition, offset in stored.get("offsets", {}).items():
            self._applied.setdefault(partition, {})[key] = offset
        return state

    def _offsets_of(self, key: str) -> dict[str, int]:
        """The last offset applied to `key` per source partition (what is persisted)."""
        return {p: applied[key] for p, applied in self._applied.items() if key in applied}

    def get(self, key: str, default: Callable[[], S]) -> S:
        """The state of `key` (decoded once), or a new one; marks it changed."""
        state = self._cache.get(key)
        if state is None:
            state = self._decode(key)
            if state is None:
                state = self._cache[key] = default()
        self._dirty.add(key)
        return state

    def replace(self, key: str, state: S) -> None:
        """Set the state of `key` (a step returned a new object); marks it changed."""
        self._cache[key] = state
        self._dirty.add(key)

    def peek(self, key: str) -> S | None:
        """The state of `key` without creating or marking it."""
        state = self._cache.get(key)
        return state if state is not None else self._decode(key)

    def already_applied(self, key: str, position: Position | None) -> bool:
        """True when `position` is at or before the last one applied to `key` in its
        partition; else records it as applied (call before changing the state). A record
        with no position (a dry run's) is never a replay."""
        if position is None:
            return False
        if key not in self._cache:
            self._decode(key)
        applied = self._applied.get(position.partition)
        if applied is None:
            applied = self._applied[position.partition] = {}
        last = applied.get(key)
        if last is not None and position.offset <= last:
            return True
        applied[key] = position.offset
        return False

    def keys(self) -> list[str]:
        """Every key known locally (backing mapping and cache)."""
        return sorted(set(self.backing.keys()) | set(self._cache))

    def persist(self) -> int:
        """Write changed states back to the mapping; return how many."""
        for key in self._dirty:
            self.backing[key] = {
                "state": self._dump(self._cache[key]),
                "offsets": self._offsets_of(key),
            }
        written = len(self._dirty)
        self._dirty.clear()
        return written

    def forget(self) -> None:
        """Drop the cache (after a rebalance another worker may have changed the backing)."""
        self._cache.clear()
        self._applied.clear()
        self._dirty.clear()
