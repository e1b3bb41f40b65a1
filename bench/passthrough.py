"""The Python floor: a bare aiokafka consume -> produce copy of the same messages.

Why: it is the most a single Python process can move through aiokafka on this machine
with no work per message, so "cityops / passthrough" is the share of that budget the
pipeline keeps. Batched both ways: ``getmany`` in, one ``BatchBuilder`` per partition
out with ``send_batch`` (the per-message ``send`` costs ~3.5x, aio-libs/aiokafka#528).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.kafka.admin import create_topics


class _Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = partitions
        self.replication = 1
        self.config: dict[str, str] = {}


async def run(
    bootstrap: str, source: str, target: str, *, expected: int, partitions: int, window: float
) -> dict[str, float | int]:
    """Copy ``source`` (from its start) to ``target``; msgs/s from first record to last ack."""
    await create_topics(bootstrap, [_Topic(target, partitions)])
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"bench-pass-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=True,
        max_partition_fetch_bytes=4 * 2**20, fetch_max_bytes=16 * 2**20,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=5, max_batch_size=512 * 1024,
        max_request_size=2**20,
    )  # fmt: skip
    await consumer.start()
    await producer.start()
    copied = 0
    in_flight: deque[asyncio.Future[object]] = deque()
    first: float | None = None
    try:
        while copied < expected:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.monotonic()
            if first is None and batch:
                first = now
            if first is not None and now - first > window:
                break
            for tp, records in batch.items():
                builder = producer.create_batch()
                for record in records:
                    if builder.append(key=record.key, value=record.value, timestamp=None) is None:
                        in_flight.append(
                            await producer.send_batch(builder, target, partition=tp.partition)
                        )
                        builder = producer.create_batch()
                        builder.append(key=record.key, value=record.value, timestamp=None)
                in_flight.append(await producer.send_batch(builder, target, partition=tp.partition))
                copied += len(records)
            while len(in_flight) > 64:
                await in_flight.popleft()
        await asyncio.gather(*in_flight)
        elapsed = time.monotonic() - (first or time.monotonic())
    finally:
        await producer.stop()
        await consumer.stop()
    return {"records": copied, "seconds": round(elapsed, 2), "msgs_per_s": copied / elapsed}
