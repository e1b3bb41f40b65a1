"""Readings batches: build one message of many readings, and read one back.

Why: Faust charges ~200 µs per event whatever the event holds, so the readings topic
carries `ReadingBatch` messages (columns, see `pipeline.models.ReadingBatch`), one per
district key per normalized intake batch. Building appends to plain lists and dumps once
with orjson; reading validates the whole message in one pydantic pass.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from pipeline.aggregates.watermark import NO_PARTITION
from pipeline.engine.emit import ORIGIN_SPAN, Position, SourceRef, partition_name
from pipeline.models import READING_BATCH_VERSION, ReadingBatch, ReadingRow

#: Readings per message at most: ~140 B each in the sample, ~600 B with 200-character ids,
#: so a full batch stays far below the broker's 1 MB message limit.
MAX_BATCH_READINGS = 1000

__all__ = ["MAX_BATCH_READINGS", "ReadingColumns", "home_partition", "positions"]


class ReadingColumns:
    """A `ReadingBatch` under construction: one list per column."""

    __slots__ = (
        "community", "district", "event_id", "grid", "lat", "lon", "metric",
        "observed_at_us", "origin_index", "origin_offset", "origin_source",
        "origin_sources", "sensor_id", "source_format", "street", "unit", "value",
        "arrived_us", "_source_index",
    )  # fmt: skip

    def __init__(self) -> None:
        self.event_id: list[str] = []
        self.sensor_id: list[str] = []
        self.metric: list[str] = []
        self.value: list[float] = []
        self.unit: list[str] = []
        self.observed_at_us: list[int] = []
        self.district: list[str | None] = []
        self.street: list[str | None] = []
        self.grid: list[str | None] = []
        self.community: list[str | None] = []
        self.lat: list[float | None] = []
        self.lon: list[float | None] = []
        self.source_format: list[str] = []
        self.arrived_us: list[int | None] = []
        self.origin_sources: list[str] = []
        self.origin_source: list[int] = []
        self.origin_offset: list[int] = []
        self.origin_index: list[int] = []
        self._source_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.event_id)

    def add(self, row: ReadingRow, origin: SourceRef | None = None, index: int = 0) -> None:
        """Append one reading; `origin` (with a partition and offset) is its raw record and
        `index` its position among that record's readings."""
        self.event_id.append(row.event_id)
        self.sensor_id.append(row.sensor_id)
        self.metric.append(row.metric)
        self.value.append(row.value)
        self.unit.append(row.unit)
        self.observed_at_us.append(row.observed_at_us)
        self.district.append(row.district)
        self.street.append(row.street)
        self.grid.append(row.grid)
        self.community.append(row.community)
        self.lat.append(row.lat)
        self.lon.append(row.lon)
        self.source_format.append(row.source_format)
        self.arrived_us.append(row.arrived_us)
        if origin is None or origin.partition is None or origin.offset is None:
            return
        where = f"{origin.topic}:{origin.partition}"
        number = self._source_index.get(where)
        if number is None:
            number = self._source_index[where] = len(self.origin_sources)
            self.origin_sources.append(where)
        self.origin_source.append(number)
        self.origin_offset.append(origin.offset)
        self.origin_index.append(index)

    def encode(self, progress: Mapping[str, int] | None = None) -> bytes:
        """The message value: a `ReadingBatch` as JSON (with the intake's `progress`)."""
        traced = len(self.origin_source) == len(self.event_id)
        return orjson.dumps(
            {
                "schema_version": READING_BATCH_VERSION,
                "event_id": self.event_id,
                "sensor_id": self.sensor_id,
                "metric": self.metric,
                "value": self.value,
                "unit": self.unit,
                "observed_at_us": self.observed_at_us,
                "district": self.district,
                "street": self.street,
                "grid": self.grid,
                "community": self.community,
                "lat": self.lat,
                "lon": self.lon,
                "source_format": self.source_format,
                "arrived_us": self.arrived_us if any(self.arrived_us) else [],
                "origin_sources": self.origin_sources if traced else [],
                "origin_source": self.origin_source if traced else [],
                "origin_offset": self.origin_offset if traced else [],
                "origin_index": self.origin_index if traced else [],
                "progress": progress or {},
            }
        )


def positions(batch: ReadingBatch, record: SourceRef) -> list[Position | None]:
    """Each reading's position for replay detection: its raw origin when the batch names
    one (a re-emission repeats it), else its place in the record that carried it, else
    None (a dry run's records have no partition)."""
    if batch.origin_source:
        names = batch.origin_sources
        return [
            Position(names[s], offset * ORIGIN_SPAN + index)
            for s, offset, index in zip(
                batch.origin_source, batch.origin_offset, batch.origin_index, strict=True
            )
        ]
    if record.partition is None or record.offset is None:
        return [None] * len(batch)
    where = partition_name(record.topic, record.partition)
    base = record.offset * ORIGIN_SPAN
    return [Position(where, base + i) for i in range(len(batch))]


def home_partition(row: ReadingRow, position: Position | None) -> str | None:
    """The raw partition a reading came from, for idleness (None: arrival unknown)."""
    if row.arrived_us is None:
        return None
    return NO_PARTITION if position is None else position.partition
