"""A failed agent batch ends the process before Faust could acknowledge it; so does a stop
that comes while a batch waits for a store that is down."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from pipeline.engine.worker.failure import (
    EXIT_BATCH_FAILED,
    EXIT_STOPPED_MID_BATCH,
    StoppedMidBatch,
)
from pipeline.metrics import Metrics
from pipeline.models import AggregateRow, AreaLevel, StoreRow, row_model, store_row
from pipeline.sinks.batching import Backoff
from pipeline.sinks.memory import MemoryStore
from pipeline.sinks.writer import StoreWriter
from tests.support.store_rows import incident_rows

_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from pipeline.engine.worker.failure import unacknowledged_on_failure

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    async def batch(fail: bool) -> None:
        async with unacknowledged_on_failure("analyze"):
            if fail:
                raise RuntimeError("store client bug")
        print("acknowledged", flush=True)

    async def main() -> None:
        await batch(False)
        await batch(True)
        print("acknowledged after failure", flush=True)

    asyncio.run(main())
    """
)


def test_a_failed_batch_exits_without_acknowledging() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == EXIT_BATCH_FAILED, done.stderr
    assert done.stdout.splitlines() == ["acknowledged"]
    assert "the analyze agent's batch failed" in done.stderr
    assert "RuntimeError: store client bug" in done.stderr


_STOPPING_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from pipeline.engine.worker.failure import StoppedMidBatch, unacknowledged_on_failure

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    async def main() -> None:
        async with unacknowledged_on_failure("analyze"):
            raise StoppedMidBatch("the worker is stopping while the store is unavailable")
        print("acknowledged", flush=True)

    asyncio.run(main())
    """
)


def test_a_stop_while_the_store_is_down_exits_without_acknowledging() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _STOPPING_SCRIPT],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == EXIT_STOPPED_MID_BATCH, done.stderr
    assert done.stdout == ""
    assert "the next worker replays it" in done.stderr


def _row() -> StoreRow:
    start = datetime(2026, 11, 29, tzinfo=UTC)
    return store_row(AggregateRow(
        window_start=start, window_end=start + timedelta(minutes=1), level=AreaLevel.district,
        area_code="310101", metric="pm25", count=1, sum=1.0, min=1.0, max=1.0, mean=1.0,
    ))  # fmt: skip


def test_the_store_writer_retries_while_running_and_gives_up_after_one_last_try() -> None:
    store = MemoryStore()
    store.down = True
    writer = StoreWriter(
        store, Metrics.create(CollectorRegistry()), backend="memory",
        stopping=lambda: store.attempts >= 2,  # the stop comes after the second attempt
    )  # fmt: skip
    # A short first backoff, then a long one: the stop must not wait it out.
    writer.batcher.backoff = Backoff(initial=0.05, multiplier=2000.0, maximum=100.0)

    async def write() -> None:
        with pytest.raises(StoppedMidBatch):
            await asyncio.wait_for(writer.write([_row()]), timeout=30)

    asyncio.run(write())
    assert store.attempts == 3, "it retried while the worker ran, tried once more, and stopped"
    assert writer.batcher.pending_rows == 1, "the rows stay queued, nothing was dropped"


def test_a_stop_during_a_backoff_still_writes_to_a_store_that_is_back() -> None:
    """The chaos suite's "store down 60 s": the store came back while a retry slept in its
    backoff, the worker was stopped, and the batch was left unacknowledged (exit 75)."""
    store = MemoryStore()
    store.down = True
    stopping = False
    writer = StoreWriter(
        store, Metrics.create(CollectorRegistry()), backend="memory", stopping=lambda: stopping
    )
    writer.batcher.backoff = Backoff(initial=100.0, maximum=100.0)  # a wait no test outlives

    incident = incident_rows(1)[0]

    async def write_rows_then_incidents() -> None:
        await writer.write([_row()])
        await writer.write_incidents([incident])

    async def stop_once_the_store_is_back() -> None:
        nonlocal stopping
        task = asyncio.create_task(write_rows_then_incidents())
        while store.attempts < 1:
            await asyncio.sleep(0.01)
        store.down = False  # the store is back while the retry sleeps
        stopping = True
        await asyncio.wait_for(task, timeout=30)

    asyncio.run(stop_once_the_store_is_back())
    assert [rows for _, rows in store.inserts] == [(row_model(_row()),)]
    assert list(store.incidents) == [incident.incident_id]
    assert writer.batcher.pending_rows == 0


def test_the_last_try_of_a_stopping_worker_is_bounded() -> None:
    store = MemoryStore()
    release = threading.Event()
    store.on_write = lambda rows: release.wait(60)  # a store that hangs
    writer = StoreWriter(
        store, Metrics.create(CollectorRegistry()), backend="memory",
        stopping=lambda: True, last_try_seconds=0.2,
    )  # fmt: skip

    async def write() -> float:
        started = time.monotonic()
        try:
            with pytest.raises(StoppedMidBatch, match="did not answer its last try"):
                await asyncio.wait_for(writer.write([_row()]), timeout=30)
            return time.monotonic() - started
        finally:
            release.set()  # asyncio.run waits for the store's thread as it closes

    assert asyncio.run(write()) < 30, "the stop did not wait for the hanging store"
