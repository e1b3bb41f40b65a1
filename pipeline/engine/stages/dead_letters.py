"""Dead letters: a refused record with its reason, detail, origin and bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.engine.emit import Emit, SourceRef
from pipeline.models import (
    DeadLetter,
    Rejection,
)
from pipeline.topology import Topology


def dead_letter(
    topology: Topology,
    rejection: Rejection,
    raw: bytes,
    source: SourceRef,
    *,
    stage: str,
    key: bytes | None = None,
) -> Emit:
    """A dead letter for `raw` with its reason, detail and origin."""
    letter = DeadLetter(
        reason=rejection.reason,
        detail=rejection.detail[:2000],
        stage=stage,
        source_topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        original=raw,
        received_at=datetime.now(UTC),
    )
    return Emit(
        topology.topics.name("deadletter"),
        key,
        letter.model_dump_json().encode(),
        "deadletter",
        str(rejection.reason),
    )
