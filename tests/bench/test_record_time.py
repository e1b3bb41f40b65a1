"""The bench times a run by its records: the first record of a topic and the last one,
read back from the real broker with the times their producer gave them."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from bench.kafkautil import GroupWatch
from pipeline.kafka.admin import create_topics, delete_topics
from pipeline.topology import TopicSpec

pytestmark = pytest.mark.integration

#: (partition, record time in ms): each partition's first record is not the oldest of all,
#: nor its last the newest, so a reader that looked at one partition, or at the wrong end,
#: gets another answer.
WRITES = [(0, 5_000), (1, 2_000), (2, 9_000), (0, 7_000), (1, 11_000), (2, 10_000), (0, 8_000)]


async def _write(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, at_ms in WRITES:
            await producer.send_and_wait(topic, b"x", partition=partition, timestamp_ms=at_ms)
    finally:
        await producer.stop()


async def _times(bootstrap: str, topic: str) -> tuple[float | None, float | None]:
    async with GroupWatch(bootstrap, "unused") as watch:
        return (
            await watch.record_time(topic, last=False),
            await watch.record_time(topic, last=True),
        )


def test_first_and_last_record_times(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic, empty = f"{topic_prefix}times", f"{topic_prefix}empty"
    asyncio.run(create_topics(kafka_bootstrap, [TopicSpec(topic, 3, 1), TopicSpec(empty, 3, 1)]))
    try:
        asyncio.run(_write(kafka_bootstrap, topic))
        assert asyncio.run(_times(kafka_bootstrap, topic)) == (2.0, 11.0)
        assert asyncio.run(_times(kafka_bootstrap, empty)) == (None, None)
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, [topic, empty]))
