"""BatchSender against the real broker: keyed records land where Kafka's default
partitioner puts them, explicit partitions are honoured, order is kept per partition,
tombstones arrive as None, and nothing is lost or duplicated."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import murmur2

from pipeline.kafka.admin import create_topics, delete_topics
from pipeline.kafka.batch_sender import BatchSender
from pipeline.topology import TopicSpec

PARTITIONS = 4


@dataclass(frozen=True)
class Out:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


async def _roundtrip(
    bootstrap: str, topic: str, records: list[Out], headers: list[tuple[Any, ...]]
) -> dict[int, list[tuple[bytes | None, bytes | None]]]:
    """Send `records` in two calls and read them back by partition (headers seen appended
    to `headers`)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=16384)
    await producer.start()
    try:
        sender = BatchSender(lambda: producer)
        assert await sender.send_all(records[:2500]) == 2500
        assert await sender.send_all(records[2500:]) == len(records) - 2500
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    try:
        count = 0
        while count < len(records):
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            for tp, messages in batch.items():
                got[tp.partition].extend((m.key, m.value) for m in messages)
                headers.extend(tuple(m.headers) for m in messages if m.headers)
                count += len(messages)
        await asyncio.sleep(0.5)
        extra = await consumer.getmany(timeout_ms=1000)
        assert not any(extra.values()), "nothing beyond what was sent"
    finally:
        await consumer.stop()
    return got


def test_batch_sender_places_orders_and_delivers_every_record(kafka_bootstrap: str) -> None:
    topic = f"test.batch-sender.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS, 1)]))
    keys = [f"district-{n}".encode() for n in range(16)]
    records = [
        Out(topic, keys[n % 16], f"v{n}-{'x' * (n % 300)}".encode()) for n in range(6000)
    ]  # several BatchBuilders per partition (16 KB each)
    records += [Out(topic, b"pinned", b"explicit", partition=3)] * 5
    records += [Out(topic, b"gone", None, partition=1)]
    records += [Out(topic, b"traced", b"v", headers=(("cityops-origin", b"raw:0:7:0"),))]
    try:
        headers: list[tuple[Any, ...]] = []
        got = asyncio.run(_roundtrip(kafka_bootstrap, topic, records, headers))
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, [topic]))
    assert sum(len(v) for v in got.values()) == len(records)
    for key in keys:
        expected_partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        sent = [r.value for r in records if r.key == key]
        assert [v for k, v in got[expected_partition] if k == key] == sent, key
    assert [v for k, v in got[3] if k == b"pinned"] == [b"explicit"] * 5
    assert [v for k, v in got[1] if k == b"gone"] == [None]
    assert headers == [(("cityops-origin", b"raw:0:7:0"),)]


class _TimesOutOnce:
    """A real producer whose `send_batch` raises a queue timeout once, for one partition,
    after that partition's first batch went out (what aiokafka raises when its queue stays
    full or metadata does not come within the request timeout)."""

    def __init__(self, producer: AIOKafkaProducer, partition: int) -> None:
        self.producer = producer
        self.partition = partition
        self.calls = 0
        self.raised = False

    def create_batch(self) -> Any:
        return self.producer.create_batch()

    async def partitions_for(self, topic: str) -> Any:
        return await self.producer.partitions_for(topic)

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        if partition == self.partition:
            self.calls += 1
            if self.calls == 2 and not self.raised:
                self.raised = True
                msg = "simulated: the batch could not be queued in time"
                raise KafkaTimeoutError(msg)
        return await self.producer.send_batch(builder, topic, partition=partition)


def test_batch_sender_resends_what_could_not_be_queued(kafka_bootstrap: str) -> None:
    topic = f"test.batch-sender.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS, 1)]))
    records = [Out(topic, b"k", f"v{n}-{'x' * 200}".encode(), partition=2) for n in range(300)]
    retries: list[BaseException] = []

    async def run() -> tuple[_TimesOutOnce, list[bytes | None]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_batch_size=16384)
        await producer.start()
        flaky = _TimesOutOnce(producer, partition=2)
        try:
            sender = BatchSender(
                lambda: flaky,  # type: ignore[arg-type,return-value]  # duck-typed producer
                backoff=lambda attempt: 0.05,
                on_retry=lambda error, delay: retries.append(error),
            )
            assert await sender.send_all(records) == len(records)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        values: list[bytes | None] = []
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=3000)
                if not batch:
                    break
                for messages in batch.values():
                    values.extend(m.value for m in messages)
        finally:
            await consumer.stop()
        return flaky, values

    try:
        flaky, values = asyncio.run(run())
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, [topic]))
    assert flaky.raised, "the fault was injected"
    assert len(retries) == 1 and isinstance(retries[0], KafkaTimeoutError)
    # Nothing lost, order kept: the first batch once, then everything from the refused one.
    assert values == [r.value for r in records]
