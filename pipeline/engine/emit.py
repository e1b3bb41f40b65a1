"""What a pipeline stage hands back to its caller: records bound for topics.

Why: the worker's agents and `cityops dry-run` run the same stage code; stages never touch
Kafka, they return `Emit`s and the caller either produces them or writes them to files.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

Headers = Sequence[tuple[str, bytes]]

ORIGIN_HEADER = "cityops-origin"
"""Header of a normalized event: the raw record it came from, `topic:partition:offset:n`.

Why: the normalizer keeps no state across a restart, so a crash between its send and its
offset commit re-emits the same events at new offsets. Keyed by their raw origin (which
a replay repeats), the stages downstream recognise such a re-emission and apply it once."""

#: Events one raw record may yield; an origin is `offset * ORIGIN_SPAN + n` (1 MB records).
ORIGIN_SPAN = 1 << 20


@functools.lru_cache(maxsize=4096)
def partition_name(topic: str, partition: int) -> str:
    """`topic:partition`, one shared string per partition (states keep one per key)."""
    return f"{topic}:{partition}"


class Position(NamedTuple):
    """Where an event sits in its source partition, to tell a replay from news: `partition`
    names it (`topic:partition`) and `offset` increases along it. (A tuple: one is made
    per reading.)"""

    partition: str
    offset: int


class SourceRef(NamedTuple):
    """Where a record came from (for dead letters and lineage, and to skip replays). (A
    tuple, as `Record` is: one is made per record.)"""

    topic: str
    partition: int | None = None
    offset: int | None = None

    def position(self) -> Position | None:
        """This record's position, or None when it has no partition or offset."""
        if self.partition is None or self.offset is None:
            return None
        return Position(partition_name(self.topic, self.partition), self.offset)

    def origin_header(self, index: int) -> tuple[str, bytes]:
        """The `ORIGIN_HEADER` of the `index`-th event made from this record."""
        return ORIGIN_HEADER, f"{self.topic}:{self.partition}:{self.offset}:{index}".encode()


def origin_of(headers: Headers | None) -> SourceRef | None:
    """The raw origin in `headers` as a source whose offsets increase along its partition,
    or None (no header, or not ours)."""
    for name, value in headers or ():
        if name == ORIGIN_HEADER:
            try:
                topic, partition, offset, index = value.decode().rsplit(":", 3)
                number, position = int(offset), int(index)
                where = int(partition)
            except ValueError:
                return None
            if not 0 <= position < ORIGIN_SPAN:
                return None
            return SourceRef(topic, where, number * ORIGIN_SPAN + position)
    return None


@dataclass(frozen=True, slots=True)
class Emit:
    """One record for one topic; `kind` and `reason` label it for metrics and summaries,
    `count` is how many events it carries (a readings batch carries many)."""

    topic: str
    key: bytes | None
    value: bytes
    kind: str
    reason: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    count: int = 1


class Record(NamedTuple):
    """One message as a stage receives it, from Kafka or from the local engine.

    `partition` and `offset` are None where there are none (a dry run's input line has an
    offset, its line number, but no partition); `timestamp_ms` is the record's Kafka
    timestamp (on the raw topics, its log-append time: when it arrived), when known.

    Why a named tuple: with one reading per raw message, one is made per reading, and a
    frozen dataclass costs ~2.9 us to make against ~0.9 (its fields are set one
    `object.__setattr__` call at a time). `_replace` gives a changed copy.
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None
    element: int | None = None
    """For one element split out of a batch message (a reading of a readings batch): its
    index there. None: the record is the whole message."""

    @property
    def arrived_us(self) -> int | None:
        """The record's timestamp in microseconds since the epoch, when known."""
        return None if self.timestamp_ms is None else self.timestamp_ms * 1000

    @property
    def source(self) -> SourceRef:
        """Where this record came from (dead letters name it)."""
        return SourceRef(self.topic, self.partition, self.offset)
