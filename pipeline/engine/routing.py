"""The stages of one topology and which topic feeds which: written once, run by both engines.

Why here: the worker (`engine/worker/`) and the broker-free local engine
(`engine/local.py`, behind `cityops dry-run`) hand every record to `Pipeline.handle`, so
they cannot route differently. Three groups of input topics, each run by one consumer in
the worker: `intake` (the raw topics: stateless normalization, a plain batch consumer),
`analyze` (readings and reports: detection and aggregation, Faust agent with tables) and
`lifecycle` (detection events and unit updates, Faust agent with a table).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from pipeline.engine.batches import one_reading, positions, share_sensor_ids
from pipeline.engine.emit import Emit, Record, origin_of
from pipeline.engine.stages import (
    AggregateStage,
    DetectStage,
    LifecycleStage,
    NormalizeStage,
    dead_letter,
    incident_event_emits,
)
from pipeline.ingest.normalize import Unmapped
from pipeline.models import CitizenReport, ReadingBatch, Rejection, RejectReason, StoreRow
from pipeline.rules.incidents import IncidentEvent
from pipeline.topology import Topology

Group = Literal["intake", "analyze", "lifecycle"]
GROUPS: tuple[Group, ...] = ("intake", "analyze", "lifecycle")

#: The state tables each consumer group's stages keep (a Faust table each in the worker).
#: A group persists and sends only its own: another group's states may be halfway
#: through a batch that has not finished (a batch waiting for the store, say).
GROUP_TABLES: dict[Group, tuple[str, ...]] = {
    "intake": (),
    "analyze": ("detector", "clusters", "progress", "windows"),
    "lifecycle": ("incidents",),
}
TABLES = tuple(name for names in GROUP_TABLES.values() for name in names)

Backing = Callable[[str], MutableMapping[str, Any]]


@dataclass(slots=True)
class Output:
    """Everything a batch of records produced."""

    emits: list[Emit] = field(default_factory=list)
    rows: list[StoreRow] = field(default_factory=list)
    late: int = 0
    formats: Counter[tuple[str, str]] = field(default_factory=Counter)
    unmapped: Counter[Unmapped] = field(default_factory=Counter)
    """Source attributes that map to no catalogue metric -> how often (see `Unmapped`)."""
    event_times_us: list[int] = field(default_factory=list)
    """The newest event time of each readings batch made or analyzed (event-time lag)."""
    caught_up: Collection[str] = ()
    """Raw partitions the intake has read to their end (an input, for normalization)."""
    assigned: Collection[str] = ()
    """Every raw partition the intake reads (an input, for normalization)."""


@dataclass(frozen=True, slots=True)
class Route:
    """Which consumer group reads a topic, and what handles its records."""

    group: Group
    handle: Callable[[Sequence[Record], Output], None]


class Pipeline:
    """The stages over their state (`backing(name)` gives each table) and the routes."""

    def __init__(
        self,
        topology: Topology,
        backing: Backing,
        *,
        max_message_bytes: int = 1_048_576,
        dedup_window_seconds: float = 600.0,
    ) -> None:
        self.topology = topology
        self.normalize = NormalizeStage(
            topology,
            max_message_bytes=max_message_bytes,
            dedup_window_seconds=dedup_window_seconds,
        )
        self.detect = DetectStage(
            topology, backing("detector"), backing("clusters"), backing("progress")
        )
        self.aggregate = AggregateStage(topology, backing("windows"))
        self.lifecycle = LifecycleStage(topology, backing("incidents"))
        name = topology.topics.name
        self.routes: dict[str, Route] = {
            name("raw_sensors"): Route("intake", self._raw),
            name("raw_reports"): Route("intake", self._raw),
            name("readings"): Route("analyze", self._readings),
            name("reports"): Route("analyze", self._reports),
            name("incident_events"): Route("lifecycle", self._incident_events),
            name("incident_updates"): Route("lifecycle", self._updates),
        }

    def alias(self, name: str, topic: str) -> None:
        """Route records of `name` like those of `topic` (the local engine reads input lines
        that name no topic as raw sensor records, and their dead letters name the file)."""
        self.routes[name] = self.routes[topic]

    def topics(self, group: Group) -> list[str]:
        """The input topics one consumer group reads."""
        return [topic for topic, route in self.routes.items() if route.group == group]

    def handle(
        self,
        records: Sequence[Record],
        caught_up: Collection[str] = (),
        assigned: Collection[str] = (),
    ) -> Output:
        """Run a batch of records through their stages, in order; runs of records of one
        topic are handed over together (the intake batches readings across records).
        `caught_up` and `assigned`: the intake's raw partitions read to their end, and all
        of them (see `NormalizeStage.on_raw`)."""
        out = Output(caught_up=caught_up, assigned=assigned)
        start = 0
        while start < len(records):
            topic = records[start].topic
            end = start + 1
            while end < len(records) and records[end].topic == topic:
                end += 1
            route = self.routes.get(topic)
            if route is None:
                msg = f"no stage reads {topic!r}"
                raise KeyError(msg)
            route.handle(records[start:end], out)
            start = end
        return out

    def split(self, record: Record) -> list[Record]:
        """A record as the smallest units a stage can take alone: a readings batch as one
        record per reading (each a batch of one that names its place in the original, so
        replays are still recognised), anything else as itself. Used to isolate the one
        reading that makes a stage fail."""
        if record.topic != self.topology.topics.name("readings"):
            return [record]
        try:
            batch = ReadingBatch.model_validate_json(record.value)
        except ValidationError:
            return [record]
        return [
            record._replace(value=one_reading(batch, index, record), element=index)
            for index in range(len(batch))
        ]

    def persist(self, group: Group | None = None) -> None:
        """Write the changed states of one consumer group's stages (every group's: None)
        back to their tables, once per batch."""
        if group in (None, "analyze"):
            self.detect.persist()
            self.aggregate.persist()
        if group in (None, "lifecycle"):
            self.lifecycle.persist()

    def forget(self) -> None:
        """Drop every cached state (after a rebalance another worker may own the keys)."""
        for stage in (self.detect, self.aggregate, self.lifecycle, self.normalize):
            stage.forget()

    def finish(self, watermark: datetime | None) -> Output:
        """End of input (the local engine): close every detection and aggregate window."""
        out = Output()
        if watermark is not None:
            out.emits.extend(self._events(self.detect.finish(watermark)))
        out.rows.extend(self.aggregate.finish())
        return out

    # -- handlers --------------------------------------------------------------------

    def _raw(self, records: Sequence[Record], out: Output) -> None:
        normalized = self.normalize.on_raw(records, out.caught_up, out.assigned)
        out.emits.extend(normalized.emits)
        out.formats.update(normalized.formats)
        out.unmapped.update(normalized.unmapped)
        if normalized.newest_us is not None:
            out.event_times_us.append(normalized.newest_us)

    def _readings(self, records: Sequence[Record], out: Output) -> None:
        late_before = self.aggregate.late
        for record in records:
            batch = self._decode_batch(record, out)
            if batch is None:
                continue
            key = (record.key or b"").decode()
            where = positions(batch, record.source)
            rows = list(batch.rows())  # made once for both stages
            out.emits.extend(self._events(self.detect.on_readings(key, batch, where, rows)))
            out.rows.extend(self.aggregate.on_readings(key, batch, where, rows))
            if len(batch):
                out.event_times_us.append(max(batch.observed_at_us))
        out.late += self.aggregate.late - late_before

    def _reports(self, records: Sequence[Record], out: Output) -> None:
        for record in records:
            try:
                report = CitizenReport.model_validate_json(record.value)
            except ValidationError as exc:
                out.emits.append(self._refused(record, exc, "analyze"))
                continue
            key = (record.key or b"").decode()
            # A re-emitted report repeats its raw origin: the state applies it once.
            origin = origin_of(record.headers) or record.source
            events = self.detect.on_report(key, report, origin.position())
            out.emits.extend(self._events(events))

    def _incident_events(self, records: Sequence[Record], out: Output) -> None:
        for record in records:
            out.emits.extend(self.lifecycle.on_incident_events(record))

    def _updates(self, records: Sequence[Record], out: Output) -> None:
        for record in records:
            out.emits.extend(self.lifecycle.on_update(record))

    # -- helpers ---------------------------------------------------------------------

    def _events(self, events: Iterable[IncidentEvent]) -> list[Emit]:
        return incident_event_emits(self.topology, events)

    def _decode_batch(self, record: Record, out: Output) -> ReadingBatch | None:
        try:
            batch = ReadingBatch.model_validate_json(record.value)
        except ValidationError as exc:
            out.emits.append(self._refused(record, exc, "analyze"))
            return None
        share_sensor_ids(batch, self.topology.sensor_index)
        return batch

    def _refused(self, record: Record, exc: ValidationError, stage: str) -> Emit:
        """A record of an internal topic that is not what the topic carries (someone else
        wrote to it, or an incompatible version did): its dead letter."""
        rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc)[:500])
        return dead_letter(self.topology, rejection, record.value, record.source, stage=stage)
