"""What a pipeline stage hands back to its caller: records bound for topics.

Why: the worker's agents and `cityops dry-run` run the same stage code; stages never touch
Kafka, they return `Emit`s and the caller either produces them or writes them to files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Headers = Sequence[tuple[str, bytes]]

ORIGIN_HEADER = "cityops-origin"
"""Header of a normalized event: the raw record it came from, `topic:partition:offset:n`.

Why: the normalizer keeps no state across a restart, so a crash between its send and its
offset commit re-emits the same events at new offsets. Keyed by their raw origin (which
a replay repeats), the stages downstream recognise such a re-emission and apply it once."""

#: Events one raw record may yield; an origin is `offset * ORIGIN_SPAN + n` (1 MB records).
ORIGIN_SPAN = 1 << 20


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from (for dead letters and lineage, and to skip replays)."""

    topic: str
    partition: int | None = None
    offset: int | None = None

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
    """One record for one topic; `kind` and `reason` label it for metrics and summaries."""

    topic: str
    key: bytes | None
    value: bytes
    kind: str
    reason: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
