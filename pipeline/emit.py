"""What a pipeline stage hands back to its caller: records bound for topics.

Why: the worker's agents and `cityops dry-run` run the same stage code; stages never touch
Kafka, they return `Emit`s and the caller either produces them or writes them to files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a raw record came from (for dead letters and lineage)."""

    topic: str
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Emit:
    """One record for one topic; `kind` and `reason` label it for metrics and summaries."""

    topic: str
    key: bytes | None
    value: bytes
    kind: str
    reason: str | None = None


Headers = Sequence[tuple[str, bytes]]
