"""Raw topics -> readings, reports and dead letters."""

from __future__ import annotations

from pipeline.engine.emit import Emit, Headers, SourceRef
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.normalize import Normalizer
from pipeline.models import (
    Reading,
)
from pipeline.topology import Topology


def reading_key(reading: Reading, topology: Topology) -> str:
    """Partition key of a reading: its district (its city when it has none)."""
    return reading.areas.district or topology.city.code


# --------------------------------------------------------------------------- normalize


class NormalizeStage:
    """Raw bytes from the raw topics -> readings, reports and dead letters.

    Re-sent events (same id within ``dedup_window_seconds``) are dead-lettered as
    ``duplicate``; the window is this process's memory, so a restart forgets it (a replay
    after a crash then produces the same deterministic ids, which detection and the store
    absorb idempotently).
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
        self.last_format: str = "unknown"

    def forget(self) -> None:
        """Forget seen ids (after a rebalance the partitions may be someone else's)."""
        if self.normalizer.dedup is not None:
            self.normalizer.dedup.clear()

    def process(self, raw: bytes | None, headers: Headers, source: SourceRef) -> list[Emit]:
        """Every output of one raw record (several readings for one NGSI entity, say)."""
        raw = raw or b""
        result = self.normalizer.normalize(raw, headers, source=source.topic)
        self.last_format = result.format or "unknown"
        emits: list[Emit] = []
        traced = source.partition is not None and source.offset is not None
        for index, event in enumerate(result.events):
            origin = (source.origin_header(index),) if traced else ()
            value = event.model_dump_json().encode()
            if isinstance(event, Reading):
                key = reading_key(event, self.topology).encode()
                emits.append(Emit(self._readings, key, value, "reading", headers=origin))
            else:
                key = event.category.encode()
                emits.append(Emit(self._reports, key, value, "report", headers=origin))
        for rejection in result.rejections:
            emits.append(dead_letter(self.topology, rejection, raw, source, stage="normalize"))
        return emits
