"""The batch sender never waits without end: it gives up after its bound, stops within
half a second when the worker stops, and does not retry a refusal no retry can change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from pipeline.errors import StoppedMidBatch
from pipeline.kafka.batch_sender import BatchSender
from pipeline.kafka.producer import ProduceError
from tests.support.fake_batches import FakeBuilder, FakeRecord


class _Refusing:
    """A producer whose every batch is refused with `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.sends = 0

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        self.sends += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(self.error)
        return future


def _sender(producer: _Refusing, **options: Any) -> BatchSender:
    return BatchSender(lambda: producer, backoff=lambda attempt: 0.05, **options)  # type: ignore[arg-type,return-value]  # duck-typed producer


RECORDS = [FakeRecord("t", b"k", b"v")]


async def test_retries_give_up_after_the_bound() -> None:
    producer = _Refusing(KafkaTimeoutError("queue full"))
    started = time.monotonic()
    with pytest.raises(ProduceError, match="still refused after"):
        await _sender(producer, give_up_after=0.5).send_all(RECORDS)
    assert 0.5 <= time.monotonic() - started < 3 and producer.sends > 2


async def test_a_stop_ends_the_wait_within_half_a_second() -> None:
    producer = _Refusing(KafkaTimeoutError("broker down"))
    stop_at = time.monotonic() + 0.3
    sender = _sender(producer, stopping=lambda: time.monotonic() > stop_at)
    with pytest.raises(StoppedMidBatch):
        await sender.send_all(RECORDS)
    assert time.monotonic() - stop_at < 1.0


async def test_a_final_refusal_is_not_retried() -> None:
    producer = _Refusing(MessageSizeTooLargeError())
    with pytest.raises(ProduceError, match="refused"):
        await _sender(producer).send_all(RECORDS)
    assert producer.sends == 1


class _Accepting(_Refusing):
    """A producer whose batches are acknowledged."""

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        self.sends += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def test_a_retry_goes_through_a_renewed_producer() -> None:
    """A batch the idempotent producer gave up on leaves a gap in its sequence numbers:
    retried on the same producer, the broker refuses it for good. So the retry asks for a
    new producer first, and sends through it."""
    first = _Refusing(KafkaTimeoutError("request timed out"))
    second = _Accepting(KafkaTimeoutError("unused"))
    current: list[Any] = [first]

    async def renew() -> None:
        current[0] = second

    sender = BatchSender(lambda: current[0], renew=renew, backoff=lambda attempt: 0.01)
    assert await sender.send_all(RECORDS) == 1
    assert (first.sends, second.sends) == (1, 1)


class _Slow(_Refusing):
    """A producer whose batches the broker acknowledges after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(KafkaTimeoutError("unused"))
        self.delay = delay

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        self.sends += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(self.delay, future.set_result, None)
        return future


async def test_a_stop_lets_a_send_the_broker_is_answering_finish() -> None:
    """A stop during a healthy send waits for its acknowledgement (milliseconds) rather
    than leaving the batch unfinished (status 75 and a replay): only a send still waiting
    after half a second, the broker away, is given up. Found by the recovery-race test,
    whose worker was stopped while a batch was being sent."""
    producer = _Slow(delay=0.05)
    sender = _sender(producer, stopping=lambda: True)  # the stop is asked already
    assert await sender.send_all(RECORDS) == 1
    assert producer.sends == 1
