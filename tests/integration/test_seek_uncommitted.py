"""A partition nothing was ever committed for goes back to its beginning when the
worker's consumer seeks to the committed offsets (`pipeline.kafka.recovery_fix`).

Why: aiokafka's `seek_to_committed` seeks only to a committed offset above 0. Faust
empties the records it fetched while a rebalance was recovering the tables and counts on
that seek to read them again, so a partition that had never been committed (a fresh
deployment, or one whose every batch failed, as in the poison test) was left past them:
the worker sat ready and idle beside records nobody had processed.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from pipeline.kafka.recovery_fix import seek_to_committed_or_beginning


async def _read_everything(consumer: AIOKafkaConsumer, expected: int) -> int:
    seen = 0
    for _ in range(60):
        batch = await consumer.getmany(timeout_ms=500)
        seen += sum(len(records) for records in batch.values())
        if seen >= expected:
            break
    return seen


@pytest.mark.integration
async def test_a_partition_never_committed_is_sought_to_its_beginning(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic, skipped = f"{topic_prefix}never-committed", f"{topic_prefix}changelog-like"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1), NewTopic(skipped, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, b"a%d" % i, partition=0)
        for i in range(3):
            await producer.send_and_wait(topic, b"b%d" % i, partition=1)
        for i in range(4):
            await producer.send_and_wait(skipped, b"c%d" % i, partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, skipped, bootstrap_servers=kafka_bootstrap, group_id=f"{topic_prefix}seek",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        assert await _read_everything(consumer, 12) == 12
        filled, other = TopicPartition(topic, 0), TopicPartition(topic, 1)
        changelog = TopicPartition(skipped, 0)
        assert [await consumer.position(tp) for tp in (filled, other, changelog)] == [5, 3, 4]
        await consumer.commit({other: OffsetAndMetadata(2, "")})

        # aiokafka alone leaves the partition never committed where the fetch left it.
        await consumer.seek_to_committed()
        assert await consumer.position(filled) == 5

        # Faust's livelock check reads each partition's position at any moment (aiokafka
        # asserts there is one): the seek must never leave a partition without one, as a
        # reset to "earliest" does until the fetcher resolves it (a worker's consumer
        # crashed so after a rebalance).
        assignment = consumer._fetcher._subscriptions.subscription.assignment
        seeking = asyncio.create_task(
            seek_to_committed_or_beginning(consumer, skip_topics={skipped})
        )
        without_position = 0
        while not seeking.done():
            without_position += sum(
                not assignment.state_value(tp).has_valid_position for tp in (filled, other)
            )
            await asyncio.sleep(0)
        committed = await seeking
        assert without_position == 0
        assert committed[filled] is None and committed[other] == 2
        assert await consumer.position(filled) == 0  # read again from its beginning
        assert await consumer.position(other) == 2  # its committed offset
        assert await consumer.position(changelog) == 4  # skipped: left alone
        assert await _read_everything(consumer, 6) == 6  # 5 of `filled`, 1 of `other`
    finally:
        await consumer.stop()
