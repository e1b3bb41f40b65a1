"""Dead letters: a refused record with its reason, detail, origin and bytes.

Why a bound on the bytes kept: a dead letter carries the original in base64 (4/3 of its
size), so a raw message near the broker's limit made a dead letter the broker refused,
and the retry stalled every record behind it. Above `MAX_ORIGINAL_BYTES` the original is
cut, and its full length and SHA-256 are kept, so a dead letter always fits.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pipeline.engine.emit import Emit, SourceRef
from pipeline.models import DeadLetter, Rejection
from pipeline.topology import Topology

#: The most bytes of an original a dead letter carries (base64: 4/3 of it, far below 1 MB).
MAX_ORIGINAL_BYTES = 256 * 1024

__all__ = ["MAX_ORIGINAL_BYTES", "dead_letter"]


def dead_letter(
    topology: Topology,
    rejection: Rejection,
    raw: bytes,
    source: SourceRef,
    *,
    stage: str,
    key: bytes | None = None,
    received_at: datetime | None = None,
) -> Emit:
    """A dead letter for `raw` (a whole record, or one refused element of a batch) with
    its reason, detail and origin; `received_at` defaults to now (a stage that must be
    deterministic passes its record's time)."""
    kept = raw
    digest: str | None = None
    limit = min(MAX_ORIGINAL_BYTES, topology.topics.part_bytes)
    if len(raw) > limit:
        kept = raw[:limit]
        digest = hashlib.sha256(raw).hexdigest()
    letter = DeadLetter(
        reason=rejection.reason,
        detail=rejection.detail[:2000],
        stage=stage,
        source_topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        original=kept,
        original_size=len(raw),
        original_sha256=digest,
        element=rejection.element,
        received_at=datetime.now(UTC) if received_at is None else received_at,
    )
    return Emit(
        topology.topics.name("deadletter"),
        key,
        letter.model_dump_json().encode(),
        "deadletter",
        str(rejection.reason),
    )
