"""Readings and citizen reports: what normalization emits, as models and as plain rows.

Why two shapes of a reading: the pydantic `Reading` is the contract; `ReadingRow` is what
the hot path carries (a tuple, not a model).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import Field

from pipeline.models.base import SCHEMA_VERSION, AdminCodes, Finite, GeoPoint, UtcDatetime, _Event

__all__ = ["MAX_OBSERVED_AT_US", "AreaCodes", "CitizenReport", "Reading", "ReadingRow"]


class Reading(_Event):
    """One measurement of one metric, in the catalogue's canonical unit."""

    event_id: str = Field(min_length=1, max_length=200)
    sensor_id: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=100)
    value: Finite
    unit: str
    observed_at: UtcDatetime
    location: GeoPoint | None = None
    areas: AdminCodes = AdminCodes()
    source_format: str = "canonical"
    schema_version: int = SCHEMA_VERSION


class CitizenReport(_Event):
    """A report from a hotline, app or Open311; `description` has personal data masked."""

    report_id: str = Field(min_length=1, max_length=200)
    channel: str
    category: str
    description: str = Field(default="", max_length=4000)
    location: GeoPoint | None = None
    areas: AdminCodes = AdminCodes()
    reported_at: UtcDatetime
    urgent: bool = False
    source_format: str = "canonical"
    schema_version: int = SCHEMA_VERSION


AreaCodes = tuple[str | None, str | None, str | None, str | None]
"""(district, street, grid, community): a reading's admin codes as plain values (what
`ReadingRow` carries; `AdminCodes` is the model)."""

MAX_OBSERVED_AT_US = 253_402_300_800_000_000
"""Microseconds from the Unix epoch to 10000-01-01T00:00:00Z: every `observed_at_us` is
below it, so it always converts to a Python datetime (normalization bounds times far
tighter; this bound keeps a foreign writer's batch from crashing a stage)."""


class ReadingRow(NamedTuple):
    """One reading as plain values: what the hot path carries from normalization through
    detection and aggregation (a pydantic `Reading` costs microseconds to build, dump and
    validate; this costs a tuple). `to_reading()` gives the model.

    `arrived_us` is when the raw record reached the broker (its log-append time, µs since
    the epoch), or None where that is unknown (a dry run's input line without one)."""

    event_id: str
    sensor_id: str
    metric: str
    value: float
    unit: str
    observed_at_us: int
    district: str | None
    street: str | None
    grid: str | None
    community: str | None
    lat: float | None
    lon: float | None
    source_format: str
    arrived_us: int | None = None

    @property
    def areas(self) -> AdminCodes:
        """The reading's admin codes as the model."""
        return AdminCodes(
            district=self.district, street=self.street, grid=self.grid, community=self.community
        )

    def to_reading(self) -> Reading:
        """The canonical `Reading` model of this row."""
        lat, lon = self.lat, self.lon
        return Reading(
            event_id=self.event_id,
            sensor_id=self.sensor_id,
            metric=self.metric,
            value=self.value,
            unit=self.unit,
            observed_at=_EPOCH_UTC + timedelta(microseconds=self.observed_at_us),
            location=None if lat is None or lon is None else GeoPoint(lat=lat, lon=lon),
            areas=self.areas,
            source_format=self.source_format,
        )

    @classmethod
    def of(cls, reading: Reading, arrived_us: int | None = None) -> ReadingRow:
        """The row of a `Reading` model."""
        areas, at = reading.areas, reading.location
        return cls(
            reading.event_id,
            reading.sensor_id,
            reading.metric,
            reading.value,
            reading.unit,
            (reading.observed_at - _EPOCH_UTC) // _MICROSECOND,
            areas.district,
            areas.street,
            areas.grid,
            areas.community,
            None if at is None else at.lat,
            None if at is None else at.lon,
            reading.source_format,
            arrived_us,
        )


_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
