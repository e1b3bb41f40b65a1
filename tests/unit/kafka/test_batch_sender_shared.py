"""The batch sender through a broker outage, as the worker's agents share it.

A refused batch is resent only through a new producer (the old one's sequence numbers
have a gap the broker refuses for good: `OutOfOrderSequenceNumber`, final). Found by the
chaos suite: while the broker was still away a new producer could not start, the retry
went through the old one, and the worker exited with status 70. Several senders share the
producer (the agents and the SLA clock): one's renewal closes the producer another is
sending through, which must not count as a final refusal either. The fakes behave as
aiokafka does: `send_batch` on a stopped producer raises `ProducerClosed`, and
`partitions_for` raises `UnknownTopicOrPartitionError` when the broker cannot be asked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import (
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    UnknownTopicOrPartitionError,
)

from pipeline.kafka.batch_sender import BatchSender
from tests.support.fake_batches import FakeBuilder, FakeRecord


class _Producer:
    """A producer that refuses its first `refusals` batches with a timeout (the broker was
    away), raises `ProducerClosed` once stopped, and learns a topic's partitions only after
    `unknown` failed asks. A send to a topic in `held` waits for `gate` first."""

    def __init__(
        self,
        *,
        refusals: int = 0,
        unknown: int = 0,
        held: frozenset[str] = frozenset(),
        gate: asyncio.Event | None = None,
    ) -> None:
        self.refusals = refusals
        self.unknown = unknown
        self.held = held
        self.gate = gate
        self.closed = False
        self.delivered: list[str] = []

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder()

    async def partitions_for(self, topic: str) -> set[int]:
        if self.unknown > 0:
            self.unknown -= 1
            raise UnknownTopicOrPartitionError()
        return {0}

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        if topic in self.held and self.gate is not None:
            await self.gate.wait()
        if self.closed:
            raise ProducerClosed()
        await asyncio.sleep(0)  # a send yields to the loop, as aiokafka's does
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.refusals > 0:
            self.refusals -= 1
            future.set_exception(KafkaTimeoutError("the batch expired"))
        else:
            self.delivered.append(topic)
            future.set_result(None)
        return future


class _Outputs:
    """What the worker's `Outputs` does: one current producer, renewed on a retry, the
    old one stopped; while `unreachable` > 0, a renewal cannot start the new producer and
    keeps the old one."""

    def __init__(self, first: _Producer, *spares: _Producer, unreachable: int = 0) -> None:
        self.current = first
        self.spares = list(spares)
        self.unreachable = unreachable
        self.renewals = 0
        self.renewed = asyncio.Event()

    def producer(self) -> Any:
        return self.current

    async def renew(self) -> None:
        if self.unreachable > 0:
            self.unreachable -= 1
            return
        self.renewals += 1
        old, self.current = self.current, self.spares.pop(0)
        old.closed = True
        self.renewed.set()

    def sender(self) -> BatchSender:
        return BatchSender(self.producer, renew=self.renew, backoff=lambda attempt: 0.01)


async def test_a_producer_renewed_by_another_sender_is_not_a_final_refusal() -> None:
    gate = asyncio.Event()
    first = _Producer(refusals=1, held=frozenset({"t2"}), gate=gate)
    second = _Producer()
    outputs = _Outputs(first, second)
    outputs.renewed = gate
    a, b = outputs.sender(), outputs.sender()
    # `a` is refused and renews the producer; `b` sends t1 through the first producer,
    # then t2 after the renewal, and finds the first producer closed.
    sent = await asyncio.gather(
        a.send_all([FakeRecord("t0", b"k", b"v")]),
        b.send_all([FakeRecord("t1", b"k", b"v"), FakeRecord("t2", b"k", b"v")]),
    )
    assert sent == [1, 2]
    assert first.delivered == ["t1"]
    assert sorted(second.delivered) == ["t0", "t2"]
    assert outputs.renewals == 1, "b renewed the producer a had already renewed"


async def test_a_sender_renews_only_the_producer_it_failed_on() -> None:
    first = _Producer(refusals=2)  # both senders' first batches time out
    second, third = _Producer(), _Producer()
    outputs = _Outputs(first, second, third)
    a, b = outputs.sender(), outputs.sender()
    sent = await asyncio.gather(
        a.send_all([FakeRecord("ta", b"k", b"v")]), b.send_all([FakeRecord("tb", b"k", b"v")])
    )
    assert sent == [1, 1]
    assert outputs.renewals == 1 and sorted(second.delivered) == ["ta", "tb"]
    assert not third.delivered


async def test_a_topic_the_broker_cannot_describe_yet_is_retried() -> None:
    producer = _Producer(unknown=2)
    sender = BatchSender(lambda: producer, backoff=lambda attempt: 0.01)  # type: ignore[arg-type,return-value]  # duck-typed producer
    assert await sender.send_all([FakeRecord("new-topic", b"k", b"v")]) == 1
    assert producer.delivered == ["new-topic"]


class _Sequenced(_Producer):
    """Once a batch of it was refused, the broker refuses its every later batch for good
    (the idempotent producer's sequence gap)."""

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        if self.refusals == 0 and self.gap:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(OutOfOrderSequenceNumber())
            return future
        self.gap = self.refusals > 0
        return await super().send_batch(builder, topic, partition=partition)

    gap = False


async def test_nothing_is_resent_through_the_refused_producer_while_no_new_one_starts() -> None:
    first, second = _Sequenced(refusals=1), _Producer()
    outputs = _Outputs(first, second, unreachable=3)  # three renewals fail: broker away
    retries: list[BaseException] = []
    sender = BatchSender(
        outputs.producer, renew=outputs.renew, backoff=lambda attempt: 0.01,
        on_retry=lambda error, delay: retries.append(error),
    )  # fmt: skip
    assert await sender.send_all([FakeRecord("t", b"k", b"v")]) == 1
    assert second.delivered == ["t"] and not first.delivered
    assert outputs.unreachable == 0 and outputs.renewals == 1
    assert [type(e) for e in retries] == [KafkaTimeoutError]
