"""Readings batches: build one message of many readings, and read one back.

Why: Faust charges ~200 µs per event whatever the event holds, so the readings topic
carries `ReadingBatch` messages (columns, see `pipeline.models.ReadingBatch`), one per
district key per normalized intake batch. Building appends to plain lists and dumps once
with orjson; reading validates the whole message in one pydantic pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import repeat
from typing import Any

import orjson

from pipeline.engine.emit import ORIGIN_SPAN, Position, SourceRef, partition_name
from pipeline.kafka.producer import key_partition
from pipeline.models import READING_BATCH_VERSION, AreaLevel, ReadingBatch, ReadingRow
from pipeline.topology import Topology

#: Readings per message at most: ~140 B each in the sample, ~600 B with 200-character ids,
#: so a full batch stays far below the broker's 1 MB message limit.
MAX_BATCH_READINGS = 1000

__all__ = [
    "MAX_BATCH_READINGS",
    "ReadingColumns",
    "partition_loads",
    "positions",
    "sensors_by_key",
    "share_sensor_ids",
]


class ReadingColumns:
    """A `ReadingBatch` under construction: its rows, turned into columns once at the end
    (one `zip` in C instead of an append per column per reading)."""

    __slots__ = ("_origins", "_rows", "_source_index", "_sources")

    def __init__(self) -> None:
        self._rows: list[ReadingRow] = []
        self._origins: list[tuple[int, int, int]] = []
        self._sources: list[str] = []
        self._source_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: ReadingRow, origin: SourceRef | None = None, index: int = 0) -> None:
        """Append one reading; `origin` (with a partition and offset) is its raw record and
        `index` its position among that record's readings."""
        self._rows.append(row)
        if origin is None or origin.partition is None or origin.offset is None:
            return
        where = partition_name(origin.topic, origin.partition)
        number = self._source_index.get(where)
        if number is None:
            number = self._source_index[where] = len(self._sources)
            self._sources.append(where)
        self._origins.append((number, origin.offset, index))

    def encode(self, progress: Mapping[str, int] | None = None) -> bytes:
        """The message value: a `ReadingBatch` as JSON (with the intake's `progress`)."""
        rows = self._rows
        columns = (
            dict(zip(ReadingRow._fields, zip(*rows, strict=True), strict=True))
            if rows
            else dict.fromkeys(ReadingRow._fields, ())
        )
        if not any(arrived is not None for arrived in columns["arrived_us"]):
            columns["arrived_us"] = ()
        traced = len(self._origins) == len(rows)
        origins = list(zip(*self._origins, strict=True)) if traced and rows else [(), (), ()]
        return orjson.dumps(
            {
                "schema_version": READING_BATCH_VERSION,
                **columns,
                "origin_sources": self._sources if traced else [],
                "origin_source": origins[0],
                "origin_offset": origins[1],
                "origin_index": origins[2],
                "progress": progress or {},
            }
        )


def positions(batch: ReadingBatch, record: SourceRef) -> list[Position | None]:
    """Each reading's position for replay detection: its raw origin when the batch names
    one (a re-emission repeats it), else its place in the record that carried it, else
    None (a dry run's records have no partition)."""
    if batch.origin_source:
        names = batch.origin_sources
        offsets = [
            offset * ORIGIN_SPAN + index
            for offset, index in zip(batch.origin_offset, batch.origin_index, strict=True)
        ]
        return _positions(map(names.__getitem__, batch.origin_source), offsets)
    if record.partition is None or record.offset is None:
        return [None] * len(batch)
    where = partition_name(record.topic, record.partition)
    base = record.offset * ORIGIN_SPAN
    return _positions(repeat(where), range(base, base + len(batch)))


def _positions(partitions: Iterable[str], offsets: Iterable[int]) -> list[Position | None]:
    """Positions made column-wise: `tuple.__new__` mapped over the zipped columns is a C
    call per reading, where `Position(...)` runs the named tuple's Python constructor
    (four times the cost; a twentieth of the analyze stage)."""
    pairs = zip(partitions, offsets, strict=False)  # `partitions` may be endless (`repeat`)
    return list(map(tuple.__new__, repeat(Position), pairs))


def sensors_by_key(topology: Topology) -> dict[str, list[str]]:
    """The registry's sensors by the key of their readings batches: their district, else
    the city's code (as the normalizer keys a reading without a district)."""
    by_key: dict[str, list[str]] = {}
    for sensor in topology.sensors:
        key = topology.admin_codes(sensor.area).get(AreaLevel.district) or topology.city.code
        by_key.setdefault(key, []).append(sensor.id)
    return by_key


def partition_loads(topology: Topology) -> dict[int, float]:
    """Registered sensors per readings partition (Kafka's keyed partitioner over the batch
    keys): the load the worker's partition assignor balances."""
    loads: Counter[int] = Counter()
    for key, sensors in sensors_by_key(topology).items():
        loads[key_partition(key.encode(), topology.topics.partitions)] += len(sensors)
    return {partition: float(count) for partition, count in loads.items()}


def one_reading(batch: ReadingBatch, index: int, record: SourceRef | Any) -> bytes:
    """Reading `index` of `batch` as a batch of its own, naming its origin (that of the
    batch, or its place in `record`'s message when the batch names none), so a replay of
    it is recognised as one of the whole message's. The batch's progress goes with its
    last reading only (it covers them all)."""
    columns = batch.model_dump()
    single = {
        name: [values[index]] if values else []
        for name, values in columns.items()
        if isinstance(values, list) and name != "origin_sources"
    }
    if batch.origin_source:
        single["origin_source"] = [0]
        sources = [batch.origin_sources[batch.origin_source[index]]]
    else:
        sources = [partition_name(record.topic, record.partition or 0)]
        single["origin_source"] = [0]
        single["origin_offset"] = [record.offset or 0]
        single["origin_index"] = [index]
    last = index == len(batch) - 1
    return orjson.dumps(
        {
            **single,
            "schema_version": batch.schema_version,
            "origin_sources": sources,
            "progress": batch.progress if last else {},
        }
    )


def share_sensor_ids(batch: ReadingBatch, registry: Mapping[str, Any]) -> None:
    """Point a decoded batch's sensor ids at the registry's own strings (`registry` is
    `Topology.sensor_index`; unknown ids stay as decoded).

    Why: the states keep a reading's sensor id for as long as the sensor reports (a
    rule's subject, a window clock's source), and a decoded copy of each id cost ~6 MB
    with 100,000 sensors; the registry holds every id already.
    """
    ids = batch.sensor_id
    registered = registry.get
    for i, sensor_id in enumerate(ids):
        sensor = registered(sensor_id)
        if sensor is not None:
            ids[i] = sensor.id
