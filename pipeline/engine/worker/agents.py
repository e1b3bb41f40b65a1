"""The worker's agents: each takes a batch of records, hands them to the stages, produces
what the stages return in one batched send, and persists the stages' changed state.

At-least-once: every topic is read as bytes (`value_serializer="raw"`), so decoding never
fails inside Faust (a decode error there is acknowledged and lost); a stage never raises
for bad input, it returns a dead letter. `stream.take_events()` acknowledges a batch only
after its body ran, and every send waits for the broker's acknowledgement, so an output is
on the broker before the offset of its input is committed. The analyze agent writes closed
windows to the store inside the batch, so its offsets never run ahead of the store.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.engine.emit import Emit, SourceRef, origin_of
from pipeline.engine.worker.failure import StoppedMidBatch, unacknowledged_on_failure
from pipeline.engine.worker.telemetry import age, count_emit, severity_level
from pipeline.engine.worker.wiring import Wiring
from pipeline.models import AggregateRow, CitizenReport, Reading

__all__ = ["register"]


def register(app: faust.App, w: Wiring) -> None:
    """Define the agents, the SLA timer and the revoke hook on `app`."""
    raw_kind = {w.topology.topics.name(k): k for k in ("raw_sensors", "raw_reports")}

    @app.agent(w.topic("raw_sensors", "raw_reports"), name="normalize", concurrency=1)
    async def normalize_agent(stream: faust.StreamT[bytes]) -> None:
        latency = w.metrics.child(w.metrics.processing_latency, "normalize")
        async for events in w.batches(stream):
            async with unacknowledged_on_failure("normalize"):
                out: list[Emit] = []
                now = time.time()
                for event in events:
                    message = event.message
                    source = SourceRef(message.topic, message.partition, message.offset)
                    emits = w.normalize.process(message.value, message.headers or (), source)
                    kind = raw_kind.get(message.topic, "raw")
                    w.metrics.child(w.metrics.events_in, kind, w.normalize.last_format).inc()
                    for emit in emits:
                        count_emit(w.metrics, emit, "normalize")
                    out.extend(emits)
                    latency.observe(age(message.timestamp, now))
                await w.outputs.send(out)

    @app.agent(w.topic("readings", "reports"), name="analyze", concurrency=1)
    async def analyze_agent(stream: faust.StreamT[bytes]) -> None:
        """Detection and aggregation in one pass: each reading is decoded once, and both
        states are keyed like it (by district), so they live in its partition."""
        async for events in w.batches(stream):
            async with unacknowledged_on_failure("analyze"):
                await _analyze(w, events)

    @app.agent(w.topic("incident_events", "incident_updates"), name="lifecycle", concurrency=1)
    async def lifecycle_agent(stream: faust.StreamT[bytes]) -> None:
        async for events in w.batches(stream):
            async with unacknowledged_on_failure("lifecycle"):
                await _lifecycle(w, events)

    @app.timer(w.settings.sla_check_seconds)  # type: ignore[untyped-decorator]  # faust is untyped
    async def sla_clock() -> None:
        emits = w.lifecycle.check_deadlines(datetime.now(UTC))
        city = w.topology.topics.name("incidents_city")
        for emit in emits:
            if emit.kind == "incident" and emit.reason == "escalate" and emit.topic == city:
                w.metrics.sla_breaches.labels(*severity_level(emit.value)).inc()
            count_emit(w.metrics, emit, "lifecycle")
        await w.outputs.send(emits)
        w.lifecycle.persist()
        await w.outputs.send(w.changelog_records())
        w.open_gauge.refresh()

    async def forget_cached_state(*_: Any, **__: Any) -> None:
        w.forget_cached_state()

    app.on_partitions_revoked.connect(forget_cached_state)

    @app.task  # type: ignore[untyped-decorator]  # faust is untyped
    async def init_store() -> None:
        with contextlib.suppress(StoppedMidBatch):  # stopped before the store came up
            await w.writer.write([])


async def _analyze(w: Wiring, events: list[Any]) -> None:
    readings = w.topology.topics.name("readings")
    out: list[Emit] = []
    rows: list[AggregateRow] = []
    now = datetime.now(UTC)
    late_before = w.aggregate.late
    for event in events:
        message = event.message
        key = (message.key or b"").decode()
        source = SourceRef(message.topic, message.partition, message.offset)
        # A re-emitted event repeats its raw origin: the states apply it once.
        applied = origin_of(message.headers) or source
        if message.topic == readings:
            reading = w.decode(Reading, message.value, source, "analyze")
            if isinstance(reading, Emit):
                out.append(reading)
                continue
            w.metrics.event_time_lag.observe((now - reading.observed_at).total_seconds())
            out.extend(w.detect.on_reading(key, reading, applied))
            rows.extend(w.aggregate.on_reading(key, reading, applied))
        else:
            report = w.decode(CitizenReport, message.value, source, "analyze")
            if isinstance(report, Emit):
                out.append(report)
                continue
            out.extend(w.detect.on_report(key, report, applied))
    if w.aggregate.late != late_before:
        w.metrics.late_events.inc(w.aggregate.late - late_before)
        w.late_log.add(w.aggregate.late - late_before)
    await w.outputs.send(out)
    if rows:
        w.metrics.windows_closed.inc(len(rows))
        await w.writer.write(rows)
    w.detect.persist()
    w.aggregate.persist()
    await w.outputs.send(w.changelog_records())


async def _lifecycle(w: Wiring, events: list[Any]) -> None:
    incident_events = w.topology.topics.name("incident_events")
    latency = w.metrics.child(w.metrics.processing_latency, "lifecycle")
    out: list[Emit] = []
    now = time.time()
    for event in events:
        message = event.message
        source = SourceRef(message.topic, message.partition, message.offset)
        if message.topic == incident_events:
            emits = w.lifecycle.on_incident_event(message.value, source)
        else:
            emits = w.lifecycle.on_update(message.value, source)
        for emit in emits:
            count_emit(w.metrics, emit, "lifecycle")
        out.extend(emits)
        latency.observe(age(message.timestamp, now))
    await w.outputs.send(out)
    w.lifecycle.persist()
    await w.outputs.send(w.changelog_records())
    w.open_gauge.refresh()
