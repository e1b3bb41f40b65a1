"""The worker's Faust agents: each takes a batch of messages, runs it through the pipeline,
produces what it returns, stores closed windows, and persists the changed state.

At-least-once: every topic is read as bytes (`value_serializer="raw"`), so decoding never
fails inside Faust (a decode error there is acknowledged and lost); a stage never raises
for bad input, it returns a dead letter. `stream.take_events()` acknowledges a batch only
after its body ran, and every send waits for the broker's acknowledgement, so an output is
on the broker (and a closed window in the store) before the offset of its input is
committed. Raw intake is not a Faust agent: see `intake.py`.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.engine.emit import Record
from pipeline.engine.routing import Group, Output
from pipeline.engine.worker.failure import (
    StoppedMidBatch,
    blaming_records,
    unacknowledged_on_failure,
)
from pipeline.engine.worker.intake import RawIntake
from pipeline.engine.worker.outputs import Trail
from pipeline.engine.worker.telemetry import count_emit, count_sla_breach
from pipeline.engine.worker.wiring import Wiring, records_of

__all__ = ["register"]


def register(app: faust.App, w: Wiring) -> RawIntake:
    """Define the agents, the raw intake, the SLA timer and the revoke hook on `app`;
    return the raw intake (readiness watches it)."""

    @app.agent(w.topic("analyze"), name="analyze", concurrency=1)
    async def analyze_agent(stream: faust.StreamT[bytes]) -> None:
        """Detection and aggregation in one pass over readings batches and reports."""
        async for events in w.batches(stream):
            async with unacknowledged_on_failure("analyze"), w.locks["analyze"]:
                await consume(w, "analyze", records_of(events))

    @app.agent(w.topic("lifecycle"), name="lifecycle", concurrency=1)
    async def lifecycle_agent(stream: faust.StreamT[bytes]) -> None:
        """Detection events and units' updates -> published transitions and the audit."""
        async for events in w.batches(stream):
            async with unacknowledged_on_failure("lifecycle"), w.locks["lifecycle"]:
                await consume(w, "lifecycle", records_of(events))
                w.open_gauge.refresh()

    @app.timer(w.settings.sla_check_seconds)  # type: ignore[untyped-decorator]  # faust is untyped
    async def sla_clock() -> None:
        if app.rebalancing:
            return  # the tables are being recovered: a state read now may be partial
        async with unacknowledged_on_failure("sla"), w.locks["lifecycle"]:
            emits = w.pipeline.lifecycle.check_deadlines(datetime.now(UTC))
            city = w.topology.topics.name("incidents_city")
            for emit in emits:
                if emit.kind == "incident" and emit.reason == "escalate" and emit.topic == city:
                    count_sla_breach(w.metrics, emit, w.topology)
                count_emit(w.metrics, emit, "lifecycle")
            await w.finish("lifecycle", Output(emits=emits))
            w.open_gauge.refresh()

    async def forget_cached_state(*_: Any, **__: Any) -> None:
        await forget_between_batches(w)

    # Revoked: another worker may own (and change) these keys now. Recovered: a state
    # read while the changelogs were being read (the SLA clock, an HTTP query) may be a
    # partial one, and the cache would keep it for good.
    app.on_partitions_revoked.connect(forget_cached_state)
    app.on_rebalance_complete.connect(forget_cached_state)

    @app.task  # type: ignore[untyped-decorator]  # faust is untyped
    async def init_store() -> None:
        with contextlib.suppress(StoppedMidBatch):  # stopped before the store came up
            await w.writer.write([])

    app.add_dependency(w.outputs)  # started before the intake, stopped after it
    intake = RawIntake(w, loop=app.loop, beacon=app.beacon)
    app.add_dependency(intake)
    return intake


async def forget_between_batches(w: Wiring) -> None:
    """Drop every cached state once no batch is in flight: a batch (or the SLA clock)
    between its run and its persist holds changed states that only the cache has."""
    async with contextlib.AsyncExitStack() as held:
        for group in sorted(w.locks):
            await held.enter_async_context(w.locks[group])
        w.pipeline.forget()


async def consume(w: Wiring, group: Group, records: list[Record]) -> None:
    """One batch of a stateful group: run, send, store, persist; or, when the batch holds
    a record that made a stage fail before (see `PoisonLog`), the same one record (one
    reading of a readings batch) at a time, a known poison one dead-lettered instead."""
    async with Trail() as trail:  # a pass is delivered while the next one runs
        if not w.poison.careful(records):
            for part in passes(records, w.settings.pass_max_bytes):
                with blaming_records(group, w.poison, part):
                    out = w.run(group, part)
                await w.finish(group, out, trail)
            return
        for unit in (unit for record in records for unit in w.pipeline.split(record)):
            why = w.poison.poisoned(unit)
            if why is not None:
                await w.outputs.send([w.poisoned_letter(group, unit, why)])
                continue
            with blaming_records(group, w.poison, [unit]):
                out = w.run(group, [unit])
            await w.finish(group, out, trail)
    w.poison.cleared(records)


def passes(records: list[Record], max_bytes: int) -> list[list[Record]]:
    """`records` cut, in order, into runs of at most `max_bytes` of values (a record
    larger than that is a run of its own).

    Why: what a pass changes waits in memory until the pass is sent (the changelog
    records of its states, and the producer's copy), so a batch of many readings messages
    is run in passes of bounded size. Each pass is delivered while the next runs (at most
    one behind: `Trail`) and the batch is acknowledged after the last: a crash mid-batch
    replays the batch, whose passes already sent are recognised by the offsets kept with
    each state, as for any replay.
    """
    runs: list[list[Record]] = []
    current: list[Record] = []
    size = 0
    for record in records:
        length = len(record.value)
        if current and size + length > max_bytes:
            runs.append(current)
            current, size = [], 0
        current.append(record)
        size += length
    if current:
        runs.append(current)
    return runs
