"""Batch aggregate rows for the store, retry outages, and say which offsets are safe to commit.

The promise (DESIGN §6): the worker's committed offsets never run ahead of what the store
has acknowledged. The shape follows quix-streams' batching sink: rows collect in an open
batch that is sealed when full (``max_rows``) or old (``max_age`` seconds); sealed batches
are written strictly in order; a batch's source offsets become committable only when that
batch *and every batch before it* has been stored. A ``StoreUnavailable`` keeps the batch
and schedules a retry with exponential backoff (never sooner than the store's
``retry_after``); the same sealed batch is retried with the same content-derived dedup
token, so an insert that did land before the connection dropped is not stored twice.

The batcher never sleeps on its own (the async worker must not block its loop): ``add``
and ``poll`` attempt a write only when one is due and return what became committable.
``flush_blocking`` is the one blocking call, for shutdown, tests and benchmarks.

What an offset means is the caller's business (Kafka convention: the next offset to read),
merged by max per key. The caller must only hand over offsets whose readings are reflected
in rows already given to the batcher or in persisted window state.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.models import StoreRow
from pipeline.sinks.base import (
    AggregateStore,
    EncodingStore,
    StoreUnavailable,
    dedup_token_for,
    payload_token,
)

Offsets = dict[Hashable, int]


def merge_offsets(into: Offsets, offsets: Mapping[Hashable, int]) -> None:
    """Merge ``offsets`` into ``into`` keeping the highest offset per key."""
    for key, offset in offsets.items():
        current = into.get(key)
        if current is None or offset > current:
            into[key] = offset


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial * multiplier**(attempt-1)``, capped at ``maximum`` (s)."""

    initial: float = 0.2
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (1-based)."""
        exponent = max(0, attempt - 1)
        return float(min(self.maximum, self.initial * self.multiplier**exponent))


@dataclass(slots=True)
class _Batch:
    rows: list[StoreRow]
    offsets: Offsets
    opened_at: float
    token: str | None = None
    payload: bytes | None = None
    """The store's encoding of the rows, made once (an `EncodingStore`'s batch)."""


@dataclass(slots=True)
class FlushOutcome:
    """What one call achieved.

    ``committable``: offsets that became safe during this call (max per key);
    ``error``: the outage that stopped it, if any; ``retry_in``: seconds until the next
    attempt is due (None when nothing waits).
    """

    committable: Offsets = field(default_factory=dict)
    written_rows: int = 0
    written_batches: int = 0
    error: StoreUnavailable | None = None
    retry_in: float | None = None


class Batcher:
    """Collects rows per size/time, writes them in order, reports safe offsets."""

    def __init__(
        self,
        store: AggregateStore,
        *,
        max_rows: int = 10_000,
        max_age: float = 1.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rows <= 0 or max_age <= 0:
            msg = "max_rows and max_age must be positive"
            raise ValueError(msg)
        self.store = store
        #: The store again when it takes encoded payloads, else None (decided once: a
        #: protocol check looks up every method).
        self._encoding: EncodingStore | None = store if isinstance(store, EncodingStore) else None
        self.max_rows = max_rows
        self.max_age = max_age
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._open: _Batch | None = None
        self._sealed: deque[_Batch] = deque()
        self._failures = 0
        self._retry_at: float | None = None
        #: every offset made safe so far (max per key)
        self.committable: Offsets = {}
        self.rows_written = 0
        self.retries = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows handed over and not yet acknowledged by the store."""
        open_rows = len(self._open.rows) if self._open else 0
        return open_rows + sum(len(batch.rows) for batch in self._sealed)

    @property
    def pending_batches(self) -> int:
        """Sealed batches waiting to be written."""
        return len(self._sealed)

    @property
    def failures(self) -> int:
        """Consecutive failed attempts on the head batch."""
        return self._failures

    def retry_in(self) -> float | None:
        """Seconds until the next write attempt is due; None when nothing is sealed."""
        if not self._sealed:
            return None
        if self._retry_at is None:
            return 0.0
        return max(0.0, self._retry_at - self.clock())

    # -- input ---------------------------------------------------------------------------

    def add(
        self, rows: Sequence[StoreRow], offsets: Mapping[Hashable, int] | None = None
    ) -> FlushOutcome:
        """Queue rows; ``offsets`` become committable once these rows are stored.

        Writes (and so may return committable offsets) when a batch fills and no backoff
        is pending. Offsets given while nothing is pending are committable at once.
        """
        outcome = FlushOutcome()
        if not rows and not self._open and not self._sealed:
            if offsets:
                merge_offsets(outcome.committable, offsets)
                merge_offsets(self.committable, offsets)
            return outcome
        now = self.clock()
        start = 0
        while start < len(rows):
            batch = self._open_batch(now)
            chunk = rows[start : start + self.max_rows - len(batch.rows)]
            batch.rows.extend(chunk)
            start += len(chunk)
            if len(batch.rows) >= self.max_rows:
                if start >= len(rows) and offsets:
                    merge_offsets(batch.offsets, offsets)
                    offsets = None
                self._seal()
        if offsets:
            merge_offsets(self._open_batch(now).offsets, offsets)
        if self._sealed and self._due(now):
            self._write_sealed(outcome)
        outcome.retry_in = self.retry_in()
        return outcome

    def poll(self) -> FlushOutcome:
        """Seal the open batch if older than ``max_age`` and write what is due."""
        outcome = FlushOutcome()
        now = self.clock()
        if self._open is not None and now - self._open.opened_at >= self.max_age:
            self._seal()
        if self._sealed and self._due(now):
            self._write_sealed(outcome)
        outcome.retry_in = self.retry_in()
        return outcome

    def flush(self) -> FlushOutcome:
        """Seal the open batch and try to write everything now, ignoring the backoff."""
        outcome = FlushOutcome()
        if self._open is not None:
            self._seal()
        if self._sealed:
            self._write_sealed(outcome)
        outcome.retry_in = self.retry_in()
        return outcome

    def flush_blocking(
        self, *, timeout: float | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> FlushOutcome:
        """Flush, sleeping through backoffs, until everything is stored.

        Raises the last StoreUnavailable when ``timeout`` seconds pass first.
        """
        total = FlushOutcome()
        deadline = None if timeout is None else self.clock() + timeout
        step = self.flush()
        while True:
            merge_offsets(total.committable, step.committable)
            total.written_rows += step.written_rows
            total.written_batches += step.written_batches
            total.error = step.error
            if not self._sealed and self._open is None:
                total.retry_in = None
                return total
            wait = self.retry_in() or 0.0
            if deadline is not None and self.clock() + wait > deadline:
                if step.error is not None:
                    raise step.error
                msg = "store did not acknowledge before the timeout"
                raise StoreUnavailable(msg)
            sleep(wait)
            step = self.poll() if self._open is None else self.flush()

    def drop_pending(self) -> int:
        """Forget unwritten rows and their offsets (partition revoked: the next owner
        re-reads them). Returns the number of rows dropped."""
        dropped = self.pending_rows
        self._open = None
        self._sealed.clear()
        self._failures = 0
        self._retry_at = None
        return dropped

    # -- internals -----------------------------------------------------------------------

    def _open_batch(self, now: float) -> _Batch:
        if self._open is None:
            self._open = _Batch(rows=[], offsets={}, opened_at=now)
        return self._open

    def _seal(self) -> None:
        if self._open is not None:
            self._sealed.append(self._open)
            self._open = None

    def _due(self, now: float) -> bool:
        return self._retry_at is None or now >= self._retry_at

    def _write(self, batch: _Batch) -> None:
        """One attempt at storing `batch`, with the token it keeps across retries."""
        store = self._encoding
        if store is not None:
            payload, token = batch.payload, batch.token
            if payload is None or token is None:
                payload = batch.payload = store.encode(batch.rows)
                token = batch.token = payload_token(payload, len(batch.rows))
            store.write_encoded(payload, dedup_token=token)
            return
        if batch.token is None:
            batch.token = dedup_token_for(batch.rows)
        self.store.write(batch.rows, dedup_token=batch.token)

    def _write_sealed(self, outcome: FlushOutcome) -> None:
        while self._sealed:
            batch = self._sealed[0]
            if batch.rows:
                try:
                    self._write(batch)
                except StoreUnavailable as exc:
                    self._failures += 1
                    self.retries += 1
                    delay = self.backoff.delay(self._failures)
                    if exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    self._retry_at = self.clock() + delay
                    outcome.error = exc
                    return
            self._sealed.popleft()
            self._failures = 0
            self._retry_at = None
            self.rows_written += len(batch.rows)
            outcome.written_rows += len(batch.rows)
            outcome.written_batches += 1 if batch.rows else 0
            merge_offsets(outcome.committable, batch.offsets)
            merge_offsets(self.committable, batch.offsets)
