"""`learn_topics` against the real broker: a producer learns every existing topic it is
given in one metadata request up front, so its first send to each costs no request of its
own; a topic that does not exist is left out, and asking does not create it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from pipeline.kafka.admin import create_topics, delete_topics, list_topics
from pipeline.kafka.batch_sender import BatchSender
from pipeline.kafka.clients import learn_topics
from pipeline.topology import TopicSpec


@dataclass(frozen=True)
class Out:
    topic: str
    key: bytes | None
    value: bytes | None


async def _created_and_ready(bootstrap: str, topics: list[str]) -> None:
    """Create `topics` and wait until each takes a record (a fresh partition can refuse
    a first produce as not led yet, which also forces a metadata update)."""
    await create_topics(bootstrap, [TopicSpec(t, 2, 1) for t in topics])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await BatchSender(lambda: producer).send_all([Out(t, b"k", b"ready") for t in topics])
    finally:
        await producer.stop()


async def _learn_then_send(
    bootstrap: str, wanted: list[str], sent: list[str]
) -> tuple[list[str], int]:
    """What `learn_topics` returned, and the metadata updates forced by sending one record to
    each of `sent` afterwards."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        learned = await learn_topics(producer, wanted)
        forced = 0
        real = producer.client.force_metadata_update

        def counting() -> asyncio.Future[bool]:
            nonlocal forced
            forced += 1
            return real()

        producer.client.force_metadata_update = counting  # type: ignore[method-assign]
        await BatchSender(lambda: producer).send_all([Out(t, b"k", b"v") for t in sent])
        return learned, forced
    finally:
        await producer.stop()


def test_learned_topics_need_no_request_on_first_send(kafka_bootstrap: str) -> None:
    prefix = f"test.learn.{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}.t{n}" for n in range(40)]
    missing = f"{prefix}.never-created"
    asyncio.run(_created_and_ready(kafka_bootstrap, topics))
    try:
        learned, forced = asyncio.run(
            _learn_then_send(kafka_bootstrap, [*topics, missing, topics[0]], topics)
        )
        existing = asyncio.run(list_topics(kafka_bootstrap, prefix))
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, topics))
    assert learned == topics  # in the order given, once each, the missing one left out
    assert forced == 0, "a first send to a learned topic asked the broker again"
    assert missing not in existing, "asking about a missing topic created it"


def test_without_learning_each_first_send_asks(kafka_bootstrap: str) -> None:
    """The cost `learn_topics` removes, shown on the same broker: one forced metadata update
    per topic first sent to."""
    prefix = f"test.learn.{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}.t{n}" for n in range(5)]
    asyncio.run(_created_and_ready(kafka_bootstrap, topics))
    try:
        learned, forced = asyncio.run(_learn_then_send(kafka_bootstrap, [], topics))
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, topics))
    assert learned == []
    assert forced >= len(topics)
