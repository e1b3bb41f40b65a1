"""What the worker's consumers share: the pipeline over its tables, the outputs, the store.

Why one object: `create_app` stays a short diagram (app, metrics, wiring, consumers, web),
and each consumer body is a few lines over `Wiring`'s methods and the pure pipeline.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.aggregates.codec import to_micros
from pipeline.engine.emit import Emit, Record
from pipeline.engine.routing import GROUP_TABLES, GROUPS, TABLES, Group, Output, Pipeline
from pipeline.engine.stages import dead_letter
from pipeline.engine.worker.outputs import Outputs, Trail, all_of
from pipeline.engine.worker.poison import PoisonLog
from pipeline.engine.worker.tables import ChangelogRecord, StateTable, state_table
from pipeline.engine.worker.telemetry import (
    LateReadingsLog,
    OpenIncidentsGauge,
    UnmappedAttributes,
    age,
    count_emit,
)
from pipeline.metrics import Metrics
from pipeline.models import Rejection, RejectReason
from pipeline.settings import Settings
from pipeline.sinks import AggregateStore, StoreError, claim_store, open_store
from pipeline.sinks.incidents import incident_row
from pipeline.sinks.writer import StoreWriter
from pipeline.topology import Topology

#: The stage name each consumer group reports in metrics (dead letters, latency).
STAGE_OF: dict[Group, str] = {"intake": "normalize", "analyze": "analyze", "lifecycle": "lifecycle"}


@dataclass
class Wiring:
    """The pipeline, its tables, and where its outputs go, for one worker."""

    app: faust.App
    settings: Settings
    topology: Topology
    metrics: Metrics
    outputs: Outputs
    store: AggregateStore
    writer: StoreWriter
    pipeline: Pipeline
    open_gauge: OpenIncidentsGauge
    poison: PoisonLog
    unmapped: UnmappedAttributes
    late_log: LateReadingsLog = field(default_factory=LateReadingsLog)
    tables: dict[str, StateTable] = field(default_factory=dict)
    locks: dict[Group, asyncio.Lock] = field(
        default_factory=lambda: {group: asyncio.Lock() for group in GROUPS}
    )
    """One batch at a time per group: the SLA clock changes lifecycle states too, and must
    not persist them halfway through the lifecycle agent's batch."""

    @classmethod
    def build(
        cls, app: faust.App, settings: Settings, topology: Topology, metrics: Metrics
    ) -> Wiring:
        """The pipeline over changelog-backed tables; the store is opened, not initialised."""
        tables = {
            name: StateTable(state_table(app, name, topology.topics.partitions)) for name in TABLES
        }
        limit = topology.topics.max_message_bytes
        if settings.max_message_bytes is not None:
            limit = min(limit, settings.max_message_bytes)
        pipeline = Pipeline(topology, tables.__getitem__, max_message_bytes=limit)
        store = _open_store(settings, topology)
        return cls(
            app=app,
            settings=settings,
            topology=topology,
            metrics=metrics,
            outputs=Outputs(
                app,
                settings,
                metrics,
                max_message_bytes=topology.topics.max_message_bytes,
                topics=[spec.name for spec in topology.topic_plan()],
                loop=app.loop,
                beacon=app.beacon,
            ),
            store=store,
            writer=StoreWriter(
                store, metrics, backend=topology.sinks.store, stopping=lambda: bool(app.should_stop)
            ),
            pipeline=pipeline,
            open_gauge=OpenIncidentsGauge(metrics, pipeline.lifecycle),
            poison=PoisonLog.load(settings.data_dir / "poison.json"),
            unmapped=UnmappedAttributes(metrics),
            tables=tables,
        )

    def topic(self, group: Group) -> Any:
        """A raw-bytes Faust topic over the input topics of one consumer group."""
        names = self.pipeline.topics(group)
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

    def batches(self, stream: faust.StreamT[bytes]) -> Any:
        """The agent's stream in batches of up to `batch_size` events."""
        return stream.take_events(  # type: ignore[attr-defined]  # StreamT omits it
            self.settings.batch_size, self.settings.batch_within_seconds
        )

    def run(
        self,
        group: Group,
        records: Sequence[Record],
        caught_up: Collection[str] = (),
        assigned: Collection[str] = (),
    ) -> Output:
        """Run a batch through the pipeline and count what it produced."""
        out = self.pipeline.handle(records, caught_up, assigned)
        stage = STAGE_OF[group]
        metrics = self.metrics
        now = time.time()
        latency = metrics.child(metrics.processing_latency, stage)
        for record in records:
            latency.observe(age(record.timestamp_ms, now))
        for emit in out.emits:
            count_emit(metrics, emit, stage)
        for (topic, fmt), seen in out.formats.items():
            metrics.child(metrics.events_in, self._kind(topic), fmt).inc(seen)
        if out.unmapped:
            self.unmapped.count(out.unmapped)
        if out.event_times_us:
            now_us = to_micros(datetime.now(UTC))
            for newest in out.event_times_us:
                metrics.event_time_lag.observe((now_us - newest) / 1e6)
        if out.late:
            metrics.late_events.inc(out.late)
            self.late_log.add(out.late)
        metrics.child(metrics.batch_events, stage).observe(len(records))
        return out

    async def finish(self, group: Group, out: Output, trail: Trail | None = None) -> None:
        """Deliver a pass: produce its outputs while storing its closed windows and the
        incident versions it published (the incidents table), then send its state changes;
        or hand both steps to `trail` (delivered while the next pass runs). Everything is
        on the broker (and in the store) before the batch is acknowledged.

        The state changes are taken now, before the next pass changes the states further.
        Only `group`'s own states: another group may be in the middle of a batch. Why the
        state last: it carries the offsets of the inputs it took in, so a replay skips
        them; sent before the outputs were acknowledged, a crash in between would lose
        those outputs."""
        self.pipeline.persist(group)
        changes = self.changelog_records(group)

        async def outputs() -> None:
            await all_of(self.outputs.send(out.emits), self._store(out))

        async def state() -> None:
            await self.outputs.send(changes)

        if trail is None:
            await outputs()
            await state()
        else:
            await trail.then(outputs, state)

    async def _store(self, out: Output) -> None:
        if out.rows:
            self.metrics.windows_closed.inc(len(out.rows))
            await self.writer.write(out.rows)
        city = self.topology.topics.name("incidents_city")  # every incident reaches it
        incidents = [
            incident_row(emit.value)
            for emit in out.emits
            if emit.kind == "incident" and emit.topic == city
        ]
        await self.writer.write_incidents(incidents)

    def poisoned_letter(self, group: Group, record: Record, why: str) -> Emit:
        """The dead letter of a record that made `group`'s stages fail (`why`)."""
        rejection = Rejection(
            reason=RejectReason.processing_error, detail=why, element=record.element
        )
        letter = dead_letter(
            self.topology, rejection, record.value, record.source, stage=STAGE_OF[group]
        )
        count_emit(self.metrics, letter, STAGE_OF[group])
        return letter

    def changelog_records(self, group: Group) -> list[ChangelogRecord]:
        """The table changes `group`'s stages queued since the last call."""
        return [record for name in GROUP_TABLES[group] for record in self.tables[name].drain()]

    def _kind(self, topic: str) -> str:
        names = self.topology.topics.name
        return "raw_reports" if topic == names("raw_reports") else "raw_sensors"


def records_of(events: Sequence[Any]) -> list[Record]:
    """Faust events as the pipeline's records (Faust gives timestamps in seconds)."""
    return [
        Record(
            m.topic,
            m.key,
            m.value,
            tuple(m.headers or ()),
            m.partition,
            m.offset,
            None if m.timestamp is None else round(m.timestamp * 1000),
        )  # fmt: skip
        for m in (event.message for event in events)
    ]


def _open_store(settings: Settings, topology: Topology) -> AggregateStore:
    try:
        store = open_store(
            topology.sinks, os.environ, chdb_path=settings.chdb_dir(topology.sinks.chdb.path)
        )
        claim_store(store)
    except StoreError as exc:
        msg = f"cannot open the aggregate store: {exc}"
        raise SystemExit(msg) from exc
    return store
