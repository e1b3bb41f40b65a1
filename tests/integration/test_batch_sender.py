"""BatchSender against the real broker: keyed records land where Kafka's default
partitioner puts them, explicit partitions are honoured, order is kept per partition,
tombstones arrive as None, and nothing is lost or duplicated."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from pipeline.kafka.admin import create_topics, delete_topics
from pipeline.kafka.producer import BatchSender
from pipeline.topology import TopicSpec

PARTITIONS = 4


@dataclass(frozen=True)
class Out:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


async def _roundtrip(
    bootstrap: str, topic: str, records: list[Out]
) -> dict[int, list[tuple[bytes | None, bytes | None]]]:
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
    try:
        got = asyncio.run(_roundtrip(kafka_bootstrap, topic, records))
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, [topic]))
    assert sum(len(v) for v in got.values()) == len(records)
    for key in keys:
        expected_partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        sent = [r.value for r in records if r.key == key]
        assert [v for k, v in got[expected_partition] if k == key] == sent, key
    assert [v for k, v in got[3] if k == b"pinned"] == [b"explicit"] * 5
    assert [v for k, v in got[1] if k == b"gone"] == [None]
