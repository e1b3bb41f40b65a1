"""Send one batch of a worker's outputs and return once the broker has every record.

Split from `pipeline.kafka.producer` (the paced stream of the simulator and the benchmark):
this is the worker's side, with its retries through a broker outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed

from pipeline.errors import StoppedMidBatch
from pipeline.kafka.producer import KeyPartitioner, ProduceError, Record, refused_error

__all__ = ["BatchSender"]


def _final(error: BaseException) -> bool:
    """A refusal no retry changes (a record too large, a topic we may not write); a local
    timeout (queue full, metadata not yet there) is worth retrying whatever aiokafka says,
    and so is a producer closed under the sender (another sender renewed it)."""
    return (
        isinstance(error, KafkaError)
        and not error.retriable
        and not isinstance(error, KafkaTimeoutError | ProducerClosed)
    )


#: A record waiting for its batch: key, value (None: a tombstone), headers.
_Pending = tuple[bytes | None, bytes | None, Any]
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared: aiokafka only reads it


class BatchSender:
    """Produces a batch of records with one ``send_batch`` per (topic, partition) and
    returns once the broker has acknowledged every one.

    Why: the worker's agents produce one or more records per input; ``send()`` per record
    costs a coroutine and a future each, which dominated the worker's profile. Why wait
    for the acknowledgements: an agent's batch is acknowledged to Faust when its body
    returns, so its outputs must be on the broker by then; a refused batch is retried with
    backoff from its first refused record on (never dropped, order kept per partition,
    possibly duplicated, as at-least-once allows).

    No wait is endless: a refusal the broker calls final (a record too large, say) raises
    `ProduceError` at once, and retries give up after `give_up_after` seconds with the
    same error (the worker then exits unacknowledged, and its supervisor restarts it); a
    stop (`stopping()` true) raises `StoppedMidBatch` within half a second.

    Before a retry, `renew()` (when given) replaces the producer: an idempotent producer
    numbers its batches per partition, and a batch it gave up on leaves a gap that the
    broker refuses for good (`OutOfOrderSequenceNumber`) if the same producer sends again.
    A new producer has a new id and starts its numbering afresh, so no record is resent
    before one has started (while the broker is away, that takes retries of its own).

    Several senders may share the producer (the worker's agents do): a sender renews only
    the producer it failed on, not one another sender already put in its place, and a
    send that finds its producer closed by such a renewal (`ProducerClosed`) is retried
    through the new one. Placing records needs the topics' partition counts: a topic the
    broker cannot describe yet (it is away) is retried the same way, not refused.
    """

    def __init__(
        self,
        producer: Callable[[], AIOKafkaProducer],
        *,
        renew: Callable[[], Awaitable[None]] | None = None,
        backoff: Callable[[int], float] = lambda attempt: min(10.0, 0.2 * 2 ** (attempt - 1)),
        on_retry: Callable[[BaseException, float], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
        give_up_after: float = 300.0,
    ) -> None:
        self._producer = producer
        self._renew = renew
        self._backoff = backoff
        self._on_retry = on_retry
        self._stopping = stopping
        self._give_up_after = give_up_after
        self.partitioner = KeyPartitioner()

    async def send_all(self, records: Iterable[Record | Any]) -> int:
        """Send every record (``topic``, ``key`` bytes or None, ``value`` bytes or None for a
        tombstone, and optionally ``partition``, else the key's, and ``headers``); how many."""
        records = list(records)
        by_tp: dict[tuple[str, int], list[_Pending]] | None = None
        attempt = 0
        started = time.monotonic()
        while True:
            producer = self._producer()
            try:
                if by_tp is None:
                    by_tp = await self._placed(producer, records)
                refused = await self._send_once(producer, by_tp)
            except ProduceError as exc:
                if not isinstance(exc.__cause__, KafkaError):
                    raise  # the topic does not exist: no retry changes that
                error: BaseException = exc.__cause__  # its partitions could not be learnt
                gap = False  # nothing was sent
            else:
                if not refused:
                    return len(records)
                by_tp = {tp: pending for tp, (_, pending) in refused.items()}
                error = next(iter(refused.values()))[0]
                gap = not isinstance(error, ProducerClosed)  # else renewed already
            attempt += 1
            if _final(error):
                raise refused_error(error)
            if time.monotonic() - started > self._give_up_after:
                msg = f"outputs still refused after {self._give_up_after:.0f} s: {error}"
                raise ProduceError(msg) from error
            delay = self._backoff(attempt)
            if self._on_retry is not None:
                self._on_retry(error, delay)
            await self._pause(delay)
            if gap:
                await self._replaced(producer, started)

    async def _replaced(self, failed: AIOKafkaProducer, started: float) -> None:
        """Return once the producer is another than `failed` (renewed by us, or already by
        another sender); renewal is retried with backoff while no new producer can start
        (the broker is still away). Resending through `failed` is never an option: the
        broker would refuse it for good (see the class)."""
        if self._renew is None:
            return
        attempt = 0
        while self._producer() is failed:
            await self._renew()
            if self._producer() is not failed:
                return
            if time.monotonic() - started > self._give_up_after:
                msg = f"no new producer could start within {self._give_up_after:.0f} s"
                raise ProduceError(msg)
            attempt += 1
            await self._pause(self._backoff(attempt))

    async def _placed(
        self, producer: AIOKafkaProducer, records: list[Record | Any]
    ) -> dict[tuple[str, int], list[_Pending]]:
        """`records` by (topic, partition), in order; raises `ProduceError` when a topic's
        partition count cannot be had."""
        by_tp: dict[tuple[str, int], list[_Pending]] = {}
        for record in records:
            topic = record.topic
            if not self.partitioner.knows(topic):
                await self.partitioner.load(producer, topic)
            partition = getattr(record, "partition", None)
            if partition is None:
                partition = self.partitioner.partition(topic, record.key)
            tp = (topic, partition)
            headers = getattr(record, "headers", None)
            headers = list(headers) if headers else _NO_HEADERS  # aiokafka takes lists only
            by_tp.setdefault(tp, []).append((record.key, record.value, headers))
        return by_tp

    def _check_stop(self) -> None:
        if self._stopping():
            msg = "the worker is stopping while its outputs wait for the broker"
            raise StoppedMidBatch(msg)

    async def _pause(self, seconds: float) -> None:
        """Sleep before a retry, a slice at a time, noticing a stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._check_stop()
            await asyncio.sleep(min(left, 0.5))
        self._check_stop()

    async def _settle(self, futures: list[asyncio.Future[Any]]) -> None:
        """Wait for the broker's answers, noticing a stop (an unreachable broker answers
        only when the request times out). A stop gives up only a wait that has lasted
        half a second: a broker that answers finishes the batch first."""
        pending = set(futures)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.5)
            if pending:
                self._check_stop()

    async def _send_once(
        self,
        producer: AIOKafkaProducer,
        by_tp: dict[tuple[str, int], list[_Pending]],
    ) -> dict[tuple[str, int], tuple[BaseException, list[_Pending]]]:
        """One attempt; per refused partition, the error and the records from the first
        refused one on."""
        sent: list[tuple[tuple[str, int], int, asyncio.Future[Any]]] = []
        not_queued: dict[tuple[str, int], tuple[BaseException, int]] = {}
        for tp, records in by_tp.items():
            start = 0
            try:
                builder = producer.create_batch()
                for index, (key, value, headers) in enumerate(records):
                    if (
                        builder.append(timestamp=None, key=key, value=value, headers=headers)
                        is None
                    ):
                        if index == start:
                            msg = f"a record of {len(value or b'')} bytes does not fit in a batch"
                            raise ProduceError(msg)
                        future = await producer.send_batch(builder, tp[0], partition=tp[1])
                        sent.append((tp, start, future))
                        start = index
                        builder = producer.create_batch()
                        builder.append(timestamp=None, key=key, value=value, headers=headers)
                future = await producer.send_batch(builder, tp[0], partition=tp[1])
                sent.append((tp, start, future))
            except KafkaError as exc:  # metadata or queue timeout: nothing from `start` on left
                not_queued[tp] = (exc, start)
        if sent:
            await self._settle([future for _, _, future in sent])
        refused: dict[tuple[str, int], tuple[BaseException, list[_Pending]]] = {}
        for tp, start, future in sent:
            error = future.exception()
            if error is not None and tp not in refused:
                refused[tp] = (error, by_tp[tp][start:])
        for tp, (error, start) in not_queued.items():
            if tp not in refused:  # else an earlier batch of it failed: resent from there
                refused[tp] = (error, by_tp[tp][start:])
        return refused
