"""Raw topics -> readings batches, reports and dead letters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import orjson

from pipeline.aggregates.watermark import NO_PARTITION, Progress, merge_progress
from pipeline.engine.batches import MAX_BATCH_READINGS, ReadingColumns
from pipeline.engine.emit import Emit, Record, SourceRef, partition_name
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.normalize import Normalizer, Unmapped
from pipeline.ingest.readings import CANONICAL
from pipeline.models import AreaLevel, ReadingRow, Rejection
from pipeline.topology import Topology


@dataclass(slots=True)
class NormalizeOutput:
    """What a batch of raw records became, and what the metrics count about it."""

    emits: list[Emit] = field(default_factory=list)
    formats: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(raw topic, format) -> raw records seen ("unknown" when no format applied)."""
    newest_us: int | None = None
    """The newest event time among the batch's readings."""
    unmapped: Counter[Unmapped] = field(default_factory=Counter)
    """Source attributes that map to no catalogue metric (dropped beside mapped ones) ->
    how often: counted and logged by the worker, never silent."""


#: How often, in arrival time, a key that got no readings is sent the intake's progress.
HEARTBEAT_US = 1_000_000


class NormalizeStage:
    """Raw bytes from the raw topics -> readings batches, reports and dead letters.

    Readings go out as `ReadingBatch` messages keyed by district (the city's code when a
    reading has none), at most `MAX_BATCH_READINGS` per message, each reading naming its
    raw origin and each message carrying the intake's progress per raw partition (a key
    that got no readings gets its progress at most once a second of arrival time); reports
    go out one per message keyed by category with the origin header.

    Re-sent events (same id within ``dedup_window_seconds``) are dead-lettered as
    ``duplicate``; the window is this process's memory, so a restart forgets it (a replay
    after a crash then produces the same deterministic ids and origins, which detection
    and the store absorb idempotently).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        max_message_bytes: int = 1_048_576,
        dedup_window_seconds: float = 600.0,
    ) -> None:
        self.topology = topology
        self.normalizer = Normalizer(
            topology,
            max_message_bytes=max_message_bytes,
            dedup=DuplicateFilter(window=dedup_window_seconds),
        )
        self._readings = topology.topics.name("readings")
        self._reports = topology.topics.name("reports")
        self._city = topology.city.code
        self.progress: Progress = {}
        """Raw partition -> the newest arrival normalized from it (see `ReadingBatch`)."""
        self._keys = [
            *(str(a.code) for a in topology.areas if a.level == AreaLevel.district),
            self._city,
        ]
        self._told: dict[str, int] = {}

    def forget(self) -> None:
        """Forget seen ids (after a rebalance the partitions may be someone else's)."""
        if self.normalizer.dedup is not None:
            self.normalizer.dedup.clear()

    def on_raw(
        self,
        records: Sequence[Record],
        caught_up: Collection[str] = (),
        assigned: Collection[str] = (),
    ) -> NormalizeOutput:
        """Every output of a batch of raw records, readings batched per key.

        `caught_up` names raw partitions the intake has read to their end: nothing else
        arrived on them, so their progress moves to the newest arrival seen anywhere.
        `assigned` names every raw partition the intake reads: one that has delivered
        nothing yet enters the progress at 0, so no sensor that may live on it looks idle.
        """
        for name in assigned:
            self.progress.setdefault(name, 0)
        out = NormalizeOutput()
        columns: dict[str, ReadingColumns] = {}
        normalizer = self.normalizer
        now = None if normalizer.dedup is None else normalizer.dedup.now()
        canonical: Counter[str] = Counter()  # raw topic -> plain canonical readings
        for record in records:
            raw = record.value or b""
            source = record.source
            arrived = self._advance(record)
            fast = normalizer.fast_reading(raw, record.headers, arrived, now)
            if fast is not None:
                canonical[record.topic] += 1
                if isinstance(fast, Rejection):
                    letter = dead_letter(self.topology, fast, raw, source, stage="normalize")
                    out.emits.append(letter)
                else:
                    self._take(out, columns, fast, source, 0)
                continue
            self._general(out, columns, record, raw, source, arrived, now)
        for topic, seen in canonical.items():
            out.formats[(topic, CANONICAL)] += seen
        if caught_up and self.progress:
            newest = max(self.progress.values())
            merge_progress(self.progress, dict.fromkeys(caught_up, newest))
        out.emits.extend(self._batch_emit(key, batch) for key, batch in columns.items())
        out.emits.extend(self._heartbeats())
        return out

    def _general(
        self,
        out: NormalizeOutput,
        columns: dict[str, ReadingColumns],
        record: Record,
        raw: bytes,
        source: SourceRef,
        arrived: int | None,
        now: float | None,
    ) -> None:
        """Normalize a record the fast path declined (any format, batches, reports)."""
        result = self.normalizer.normalize(
            raw, record.headers, source=record.topic, arrived_us=arrived, now=now
        )
        out.formats[(record.topic, result.format or "unknown")] += 1
        if result.unmapped:
            out.unmapped.update(result.unmapped)
        traced = source.partition is not None and source.offset is not None
        for index, item in enumerate(result.items):
            if isinstance(item, ReadingRow):
                self._take(out, columns, item, source, index)
                continue
            origin = (source.origin_header(index),) if traced else ()
            value = item.model_dump_json().encode()
            key_bytes = item.category.encode()
            out.emits.append(Emit(self._reports, key_bytes, value, "report", headers=origin))
        for rejection in result.rejections:
            original = raw
            if rejection.element is not None and result.elements is not None:
                original = orjson.dumps(result.elements[rejection.element])
            letter = dead_letter(self.topology, rejection, original, source, stage="normalize")
            out.emits.append(letter)

    def _take(
        self,
        out: NormalizeOutput,
        columns: dict[str, ReadingColumns],
        row: ReadingRow,
        source: SourceRef,
        index: int,
    ) -> None:
        """Add a reading to its key's batch (sent once full)."""
        if out.newest_us is None or row.observed_at_us > out.newest_us:
            out.newest_us = row.observed_at_us
        key = row.district or self._city
        batch = columns.get(key)
        if batch is None:
            batch = columns[key] = ReadingColumns()
        batch.add(row, source, index)
        if len(batch) >= MAX_BATCH_READINGS:
            out.emits.append(self._batch_emit(key, columns.pop(key)))

    def _advance(self, record: Record) -> int | None:
        """Count `record`'s arrival into its partition's progress; its arrival time."""
        arrived = record.arrived_us
        if arrived is None:
            return None
        where = NO_PARTITION
        if record.partition is not None:
            where = partition_name(record.topic, record.partition)
        if arrived > self.progress.get(where, -1):
            self.progress[where] = arrived
        return arrived

    def _batch_emit(self, key: str, batch: ReadingColumns) -> Emit:
        if self.progress:
            self._told[key] = max(self.progress.values())
        value = batch.encode(dict(self.progress))
        return Emit(self._readings, key.encode(), value, "reading", count=len(batch))

    def _heartbeats(self) -> list[Emit]:
        """Progress alone, to every key told nothing for `HEARTBEAT_US` of arrival time, so
        a district's windows learn that its silent partitions moved on."""
        if not self.progress:
            return []
        now = max(self.progress.values())
        quiet = [k for k in self._keys if now - self._told.get(k, -HEARTBEAT_US) >= HEARTBEAT_US]
        return [self._batch_emit(key, ReadingColumns()) for key in quiet]
