"""What the worker's agents share: the stages over their tables, the outputs, the store.

Why one object: `create_app` stays a short diagram (app, metrics, wiring, agents, web),
and each agent body is a few lines over `Wiring`'s methods and the pure stages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
from pydantic import BaseModel, ValidationError

from pipeline.engine.emit import Emit, SourceRef
from pipeline.engine.stages import (
    AggregateStage,
    DetectStage,
    LifecycleStage,
    NormalizeStage,
    dead_letter,
)
from pipeline.engine.worker.outputs import Outputs
from pipeline.engine.worker.tables import ChangelogRecord, StateTable, state_table
from pipeline.engine.worker.telemetry import LateReadingsLog, OpenIncidentsGauge, count_emit
from pipeline.metrics import Metrics
from pipeline.models import Rejection, RejectReason
from pipeline.settings import Settings
from pipeline.sinks import AggregateStore, StoreError, open_store
from pipeline.sinks.writer import StoreWriter
from pipeline.topology import Topology

M = TypeVar("M", bound=BaseModel)


@dataclass
class Wiring:
    """The stages, their tables, and where their outputs go, for one worker."""

    app: faust.App
    settings: Settings
    topology: Topology
    metrics: Metrics
    outputs: Outputs
    store: AggregateStore
    writer: StoreWriter
    normalize: NormalizeStage
    detect: DetectStage
    aggregate: AggregateStage
    lifecycle: LifecycleStage
    open_gauge: OpenIncidentsGauge
    late_log: LateReadingsLog = field(default_factory=LateReadingsLog)
    tables: dict[str, StateTable] = field(default_factory=dict)

    @classmethod
    def build(
        cls, app: faust.App, settings: Settings, topology: Topology, metrics: Metrics
    ) -> Wiring:
        """Stages over changelog-backed tables; the store is opened but not yet initialised."""
        transactional = settings.processing_guarantee == "exactly_once"
        tables: dict[str, StateTable] = {}

        def table(name: str) -> StateTable:
            faust_table = state_table(app, name, topology.topics.partitions)
            tables[name] = StateTable(faust_table, transactional=transactional)
            return tables[name]

        store = _open_store(settings, topology)
        lifecycle = LifecycleStage(topology, table("incidents"))
        return cls(
            app=app,
            settings=settings,
            topology=topology,
            metrics=metrics,
            outputs=Outputs(app, settings, metrics),
            store=store,
            writer=StoreWriter(
                store, metrics, backend=topology.sinks.store, stopping=lambda: bool(app.should_stop)
            ),
            normalize=NormalizeStage(topology, max_message_bytes=settings.max_message_bytes),
            detect=DetectStage(topology, table("detector"), table("clusters")),
            aggregate=AggregateStage(topology, table("windows")),
            lifecycle=lifecycle,
            open_gauge=OpenIncidentsGauge(metrics, lifecycle),
            tables=tables,
        )

    def topic(self, *kinds: str) -> Any:
        """A raw-bytes Faust topic over the topology's topics of these kinds."""
        names = [self.topology.topics.name(kind) for kind in kinds]  # type: ignore[arg-type]  # known kinds
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

    def batches(self, stream: faust.StreamT[bytes]) -> Any:
        """The agent's stream in batches of up to `batch_size` events."""
        return stream.take_events(  # type: ignore[attr-defined]  # StreamT omits it
            self.settings.batch_size, self.settings.batch_within_seconds
        )

    def decode(self, model: type[M], raw: bytes, source: SourceRef, stage: str) -> M | Emit:
        """A record of an internal topic as its model, or its dead letter (someone else
        wrote to the topic, or an incompatible version did)."""
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc)[:500])
            letter = dead_letter(self.topology, rejection, raw, source, stage=stage)
            count_emit(self.metrics, letter, stage)
            return letter

    def changelog_records(self) -> list[ChangelogRecord]:
        """Every table change queued since the last call."""
        return [record for table in self.tables.values() for record in table.drain()]

    def forget_cached_state(self) -> None:
        """Another worker may own (and change) these keys now: re-read them from the tables."""
        for stage in (self.detect, self.aggregate, self.lifecycle):
            stage.forget()
        self.normalize.forget()


def _open_store(settings: Settings, topology: Topology) -> AggregateStore:
    try:
        return open_store(topology.sinks, os.environ, chdb_path=settings.chdb_path)
    except StoreError as exc:
        msg = f"cannot open the aggregate store: {exc}"
        raise SystemExit(msg) from exc
