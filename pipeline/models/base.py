"""What every canonical event shares: the frozen base, the schema version, field types.

Why: one definition of "a time is timezone-aware UTC" and "a number is finite", reused by
every event, so no model can drift from the others.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "AdminCodes",
    "Finite",
    "GeoPoint",
    "PlausibleTime",
    "UtcDatetime",
]

SCHEMA_VERSION = 1


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        msg = "must be a finite number"
        raise ValueError(msg)
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware time, converted to UTC; naive times are refused."""

Finite = Annotated[float, AfterValidator(_finite)]


_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    if not _MIN_TIME <= value < _MAX_TIME:
        msg = "must be from 2000 up to 2100"
        raise ValueError(msg)
    return value


PlausibleTime = Annotated[UtcDatetime, AfterValidator(_plausible)]
"""A UTC time from the year 2000 up to 2100 (arithmetic on it never overflows)."""


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeoPoint(_Event):
    """WGS 84 coordinates."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class AdminCodes(_Event):
    """The administrative areas an event falls in (codes from the topology)."""

    district: str | None = None
    street: str | None = None
    grid: str | None = None
    community: str | None = None
