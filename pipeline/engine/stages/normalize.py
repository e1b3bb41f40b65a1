"""Raw topics -> readings batches, reports and dead letters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from pipeline.engine.batches import MAX_BATCH_READINGS, ReadingColumns
from pipeline.engine.emit import Emit, Record
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.normalize import Normalizer
from pipeline.models import ReadingRow
from pipeline.topology import Topology


@dataclass(slots=True)
class NormalizeOutput:
    """What a batch of raw records became, and what the metrics count about it."""

    emits: list[Emit] = field(default_factory=list)
    formats: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(raw topic, format) -> raw records seen ("unknown" when no format applied)."""
    newest_us: int | None = None
    """The newest event time among the batch's readings."""


class NormalizeStage:
    """Raw bytes from the raw topics -> readings batches, reports and dead letters.

    Readings go out as `ReadingBatch` messages keyed by district (the city's code when a
    reading has none), at most `MAX_BATCH_READINGS` per message, each reading naming its
    raw origin; reports go out one per message keyed by category with the origin header.

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

    def forget(self) -> None:
        """Forget seen ids (after a rebalance the partitions may be someone else's)."""
        if self.normalizer.dedup is not None:
            self.normalizer.dedup.clear()

    def on_raw(self, records: Sequence[Record]) -> NormalizeOutput:
        """Every output of a batch of raw records, readings batched per key."""
        out = NormalizeOutput()
        columns: dict[str, ReadingColumns] = {}
        for record in records:
            raw = record.value or b""
            source = record.source
            result = self.normalizer.normalize(
                raw, record.headers, source=record.topic, arrived_us=record.arrived_us
            )
            out.formats[(record.topic, result.format or "unknown")] += 1
            traced = source.partition is not None and source.offset is not None
            for index, item in enumerate(result.items):
                if isinstance(item, ReadingRow):
                    if out.newest_us is None or item.observed_at_us > out.newest_us:
                        out.newest_us = item.observed_at_us
                    key = item.district or self._city
                    batch = columns.get(key)
                    if batch is None:
                        batch = columns[key] = ReadingColumns()
                    batch.add(item, source, index)
                    if len(batch) >= MAX_BATCH_READINGS:
                        out.emits.append(self._batch_emit(key, columns.pop(key)))
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
        out.emits.extend(self._batch_emit(key, batch) for key, batch in columns.items())
        return out

    def _batch_emit(self, key: str, batch: ReadingColumns) -> Emit:
        return Emit(self._readings, key.encode(), batch.encode(), "reading", count=len(batch))
