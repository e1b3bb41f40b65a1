"""What the pipeline does with a record it cannot use: a `Rejection` value inside the
pure stages, a `DeadLetter` on the dead-letter topic.

Why values, not exceptions: a bad record must never stop an agent; it flows on, with its
reason and its original bytes.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, field_validator

from pipeline.models.base import SCHEMA_VERSION, UtcDatetime, _Event
from pipeline.models.enums import RejectReason

__all__ = ["Base64Bytes", "DeadLetter", "Rejection"]


def _b64decode(value: Any) -> Any:
    if isinstance(value, str):
        return base64.b64decode(value)
    return value


Base64Bytes = Annotated[
    bytes,
    PlainSerializer(lambda raw: base64.b64encode(raw).decode("ascii"), return_type=str),
]


class DeadLetter(_Event):
    """A record that could not be used, with why, where it came from, and its bytes."""

    reason: RejectReason
    detail: str
    stage: str = "normalize"
    source_topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    original: Base64Bytes
    original_size: int | None = Field(
        default=None,
        ge=0,
        description="Length in bytes of the whole original (of the element, for a batch "
        "element); when it exceeds what a dead letter keeps (256 KiB), `original` holds "
        "its beginning and `original_sha256` identifies it.",
    )
    original_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    element: int | None = Field(
        default=None,
        description="Index of the refused element when the record was a batch (FIWARE "
        "notification data, a SensorThings collection, a JSON array): `original` then "
        "holds that element alone, and its good neighbours went through.",
    )
    received_at: UtcDatetime
    schema_version: int = SCHEMA_VERSION

    @field_validator("original", mode="before")
    @classmethod
    def _decode_original(cls, value: Any) -> Any:
        return _b64decode(value)


class Rejection(_Event):
    """A value (never an exception) that a pure stage returns for bad input; `element` is
    the index of the batch element it concerns (None: the whole record)."""

    reason: RejectReason
    detail: str
    element: int | None = None
