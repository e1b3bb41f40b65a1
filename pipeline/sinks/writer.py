"""The retrying store writer: closed-window rows and incident versions reach the store
before the batch that made them is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from pipeline.errors import StoppedMidBatch
from pipeline.metrics import Metrics
from pipeline.models import StoreRow
from pipeline.sinks import AggregateStore, StoreError, StoreUnavailable
from pipeline.sinks.batching import Backoff, Batcher
from pipeline.sinks.incidents import IncidentRow, incidents_token_for

__all__ = ["StoreWriter"]

T = TypeVar("T")


class StoreWriter:
    """Writes closed-window rows and waits until the store has acknowledged every one.

    Runs inside the analyze agent's batch, so the batch's offsets are acknowledged (and
    later committed) only after the store has its rows. The store is initialised on first
    use; while it is down or refuses, the writer backs off and retries without end (an
    escaping error would let Faust acknowledge the batch anyway), and Faust pauses
    consumption when its buffers fill. Once the worker is stopping, an operation gets one
    last try, bounded by `last_try_seconds`, then gives up with `StoppedMidBatch`.
    """

    def __init__(
        self,
        store: AggregateStore,
        metrics: Metrics,
        *,
        backend: str,
        stopping: Callable[[], bool] = lambda: False,
        last_try_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.backend = backend
        self.stopping = stopping
        self.last_try_seconds = last_try_seconds
        self.batcher = Batcher(store, max_rows=10_000, max_age=1.0, backoff=Backoff(maximum=10.0))
        self.ready = False
        #: The last store operation failed (cleared by the next success): readiness.
        self.failing = False
        self.log = logging.getLogger("pipeline.sinks")
        self._lock = asyncio.Lock()  # see `_operation`
        self._last_try_spent = False

    async def _init(self) -> None:
        attempt = 0
        while not self.ready:
            try:
                await self._call(self.store.init)
            except StoreError as exc:
                attempt += 1
                delay = self.batcher.backoff.delay(attempt)
                self.metrics.store_failures.labels(self.backend).inc()
                self.log.warning("store init failed (%s); retrying in %.1fs", exc, delay)
                await self._pause(delay)
            else:
                self.ready = True
                self.failing = False

    @contextlib.asynccontextmanager
    async def _operation(self) -> AsyncIterator[None]:
        """One store operation at a time (the batcher is not thread-safe), each with its
        own last try once the worker is stopping (see `_pause`)."""
        async with self._lock:
            self._last_try_spent = False
            yield

    async def write(self, rows: Sequence[StoreRow]) -> None:
        """Queue `rows` and return once the store has everything queued so far."""
        async with self._operation():
            await self._write(rows)

    async def _write(self, rows: Sequence[StoreRow]) -> None:
        await self._init()
        if rows:
            # In a thread like the flush below: more rows than a store batch seal one,
            # which `add` writes at once, and an insert on the loop would stop the raw
            # intake for as long as the store takes (chDB releases the GIL meanwhile).
            await self._call(self.batcher.add, rows)
            self.metrics.store_batch_rows.observe(len(rows))
        attempt = 0
        while self.batcher.pending_rows:
            started = time.monotonic()
            try:
                outcome = await self._call(self.batcher.flush)
            except StoreError as exc:  # not retryable by the batcher: keep the rows, retry
                attempt += 1
                self.metrics.store_failures.labels(self.backend).inc()
                self.log.error("store write refused (%s); retrying", exc)
                await self._pause(self.batcher.backoff.delay(attempt))
                continue
            self.metrics.store_insert_seconds.labels(self.backend).observe(
                time.monotonic() - started
            )
            self.failing = outcome.error is not None
            if outcome.error is not None:
                self.metrics.store_failures.labels(self.backend).inc()
                self.metrics.store_retries.labels(self.backend).inc()
                await self._pause(self.batcher.retry_in() or 0.5)

    async def write_incidents(self, rows: Sequence[IncidentRow]) -> None:
        """Store incident versions and return once the store has them (retrying like rows).

        Why in the batch as well: the incidents table is the dashboards' current state;
        written before the lifecycle batch is acknowledged, it never misses a change the
        incident topics carry."""
        if not rows:
            return
        token = incidents_token_for(rows)
        async with self._operation():
            await self._init()
            attempt = 0
            while True:
                started = time.monotonic()
                try:
                    await self._call(self.store.write_incidents, rows, dedup_token=token)
                except StoreError as exc:
                    attempt += 1
                    self.metrics.store_failures.labels(self.backend).inc()
                    if isinstance(exc, StoreUnavailable):
                        self.metrics.store_retries.labels(self.backend).inc()
                    self.log.error("incidents write failed (%s); retrying", exc)
                    await self._pause(self.batcher.backoff.delay(attempt))
                    continue
                self.metrics.store_insert_seconds.labels(self.backend).observe(
                    time.monotonic() - started
                )
                self.failing = False
                return

    async def _call(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store operation in a thread; while stopping, bounded by `last_try_seconds`.

        Why bounded: a store that hangs must not hold the worker's stop (see `_pause`)."""
        call = asyncio.to_thread(operation, *args, **kwargs)
        if not self.stopping():
            return await call
        try:
            return await asyncio.wait_for(call, self.last_try_seconds)
        except TimeoutError as exc:
            msg = "the worker is stopping and the store did not answer its last try"
            raise StoppedMidBatch(msg) from exc

    async def _pause(self, seconds: float) -> None:
        """Wait before a retry; once the worker is stopping, end the wait at once for one
        last try, and raise `StoppedMidBatch` if that try fails too.

        Why: Faust's warm shutdown waits for every batch in flight to finish, and a batch
        waiting for a store that stays down never does; the stop would hang until the
        supervisor kills the worker. Why one last try: a stop that comes while a retry
        sleeps in its backoff, after the store is back, would otherwise leave a batch
        unacknowledged that the store could take now.
        """
        self.failing = True  # every failure path pauses before its retry
        deadline = time.monotonic() + seconds
        while True:
            if self.stopping():
                if self._last_try_spent:
                    msg = "the worker is stopping while the store is unavailable"
                    raise StoppedMidBatch(msg)
                self._last_try_spent = True
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.2))
