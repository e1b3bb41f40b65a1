"""The store writer: a store's insert never holds the worker's event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from pipeline.metrics import Metrics
from pipeline.models import AggregateRow
from pipeline.sinks.memory import MemoryStore
from pipeline.sinks.writer import StoreWriter
from tests.unit.sinks.rows import MINUTE, T0, stored_row


async def test_the_event_loop_runs_while_a_full_batch_is_inserted() -> None:
    """More rows than one store batch seal a batch inside `write`: every insert runs off
    the loop (as chDB's does, releasing the GIL), so the raw intake, another task on the
    same loop, goes on meanwhile."""
    ticks: list[int] = []
    ticks_during: list[int] = []

    def slow_insert(rows: Sequence[AggregateRow]) -> None:
        before = len(ticks)
        time.sleep(0.3)
        ticks_during.append(len(ticks) - before)

    store = MemoryStore()
    store.on_write = slow_insert
    writer = StoreWriter(store, Metrics.create(CollectorRegistry()), backend="memory")
    rows = [
        stored_row(
            area_code=f"s{n}", window_start=T0 + n * MINUTE, window_end=T0 + (n + 1) * MINUTE
        )
        for n in range(writer.batcher.max_rows + 5)
    ]

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        await writer.write(rows)
    finally:
        task.cancel()
    assert len(ticks_during) == 2  # the sealed batch of max_rows rows, then the rest
    assert all(during > 0 for during in ticks_during), ticks_during
    assert store.stored_rows == len(rows)
