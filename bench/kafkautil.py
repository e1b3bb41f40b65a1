"""Broker-side helpers for the benchmark: private topic sets, preloading, progress.

Why: every measurement runs on its own topic prefix (and consumer group), so a run never
reads another run's records and several people can benchmark against one broker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.engine.worker.intake import intake_group
from pipeline.kafka.admin import create_topics, delete_topics, list_topics
from pipeline.kafka.producer import ProduceStats, Record, produce
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology

SIM_START = datetime(2026, 11, 25, tzinfo=UTC)


def with_prefix(topology: Topology, prefix: str) -> Topology:
    """The topology with its topics under ``prefix`` (as CITYOPS_TOPIC_PREFIX does)."""
    topics = topology.topics.model_copy(update={"prefix": prefix})
    return topology.model_copy(update={"topics": topics})


async def create_all(bootstrap: str, topology: Topology) -> None:
    """Every topic of the topology's plan (the worker would create them too)."""
    await create_topics(bootstrap, topology.topic_plan())


async def drop_prefix(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix``; return how many."""
    names = await list_topics(bootstrap, prefix)
    if names:
        await delete_topics(bootstrap, sorted(names))
    return len(names)


#: Seconds a step waits after deleting its topics: the broker removes their files one
#: second after (`file.delete.delay.ms` of the local broker), and that work must not fall
#: into the next measurement.
DELETE_SETTLE_S = 3.0


def drop_step(bootstrap: str, prefix: str) -> int:
    """Delete one step's topics, its own (``prefix``) and its workers' changelogs
    (``<prefix without the dot>-group-...``), then let the broker finish; how many.

    Why after each step: one run made about 3,700 topics (a prefix holds a topic per
    street), and kept to the end they slowed every later step; the scaling runs, last,
    fell from about 19,500 to 15,200 readings/s over their own five pairs."""
    names = asyncio.run(list_topics(bootstrap, prefix))
    names |= asyncio.run(list_topics(bootstrap, f"{prefix.rstrip('.')}-group"))
    if names:
        asyncio.run(delete_topics(bootstrap, sorted(names)))
        time.sleep(DELETE_SETTLE_S)
    return len(names)


def readings(topology: Topology, count: int, *, seed: int = 1) -> list[Record]:
    """``count`` canonical readings from the simulator (no faults, no reports)."""
    sim = Simulator(topology, seed=seed, start=SIM_START, fault_rate=0.0, reports_per_minute=0.0)
    return list(itertools.islice(sim.events(), count))


@dataclass(frozen=True)
class Gateway:
    """One raw message of a gateway: many canonical readings as one JSON array."""

    topic: str
    key: bytes
    value: bytes


def gateway_batches(records: list[Record], per_message: int) -> list[Record]:
    """The same readings packed ``per_message`` at a time into canonical JSON arrays.

    Readings are grouped by key first (a gateway serves a fixed set of sensors), so a
    message's key still decides its partition as a keyed producer would.
    """
    by_key = sorted(records, key=lambda r: r.key)
    out: list[Record] = []
    for start in range(0, len(by_key), per_message):
        chunk = by_key[start : start + per_message]
        value = b"[" + b",".join(r.value for r in chunk) + b"]"
        out.append(Gateway(chunk[0].topic, chunk[0].key, value))
    return out


async def preload(bootstrap: str, records: Iterable[Record]) -> ProduceStats:
    """Send records as fast as the broker takes them, keyed like the simulator."""
    return await produce(records, bootstrap=bootstrap, acks=1)


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await consumer._client.force_metadata_update()  # noqa: SLF001  # metadata lags creation
        await asyncio.sleep(0.1)
    msg = f"no partitions for {topic}"
    raise RuntimeError(msg)


@dataclass
class Progress:
    """How far a consumer group got through a topic set, sampled over time."""

    first_output_at: float | None = None
    done_at: float | None = None
    processed: int = 0
    """Raw records committed by the worker's group."""
    outputs: int = 0
    """Messages on the readings topic (batches of readings)."""
    caught_up: bool = False
    first_output_time: float | None = None
    """When the first readings batch was written (its record's time, s since the epoch)."""
    done_time: float | None = None
    """When the last state of the analysis was written (the newest record time of its
    changelogs): the end of its last pass, to the millisecond."""


class GroupWatch:
    """End offsets of topics and a group's committed offsets on them, polled cheaply."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self.parts: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> GroupWatch:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def end(self, topic: str) -> int:
        """Records in ``topic`` (sum of end offsets; our topics are never truncated)."""
        if topic not in self.parts:
            self.parts[topic] = await partitions(self.consumer, topic)
        offsets = await self.consumer.end_offsets(self.parts[topic])
        return sum(offsets.values())

    async def record_time(self, topic: str, *, last: bool) -> float | None:
        """When ``topic``'s first record (the oldest of its partitions' first ones) or, with
        ``last``, its last (the newest of their last ones) was written: the record's time,
        seconds since the epoch. None when the topic holds no record, or a partition did
        not answer within 10 s.

        Why: the group's committed offsets say *that* a worker finished, but only to
        Faust's commit interval (1 s) and this watch's polling (0.25 s), too coarse for
        runs of 3 to 6 s; the records' own times say *when*."""
        if topic not in self.parts:
            self.parts[topic] = await partitions(self.consumer, topic)
        parts = self.parts[topic]
        begin = await self.consumer.beginning_offsets(parts)
        end = await self.consumer.end_offsets(parts)
        wanted = {tp: end[tp] - 1 if last else begin[tp] for tp in parts if end[tp] > begin[tp]}
        if not wanted:
            return None
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await reader.start()
        try:
            reader.assign(list(wanted))
            for tp, offset in wanted.items():
                reader.seek(tp, offset)
            times: dict[TopicPartition, float] = {}
            deadline = time.monotonic() + 10
            while len(times) < len(wanted) and time.monotonic() < deadline:
                fetched = await reader.getmany(timeout_ms=500)
                for tp, records in fetched.items():
                    if records and tp not in times:
                        times[tp] = records[0].timestamp / 1000
        finally:
            await reader.stop()
        if len(times) < len(wanted):
            return None
        return max(times.values()) if last else min(times.values())

    async def committed(self, topic: str, group: str | None = None) -> int:
        """Records of ``topic`` the group (or ``group``) has committed (processed)."""
        offsets = await self.admin.list_consumer_group_offsets(group or self.group)
        return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


async def watch_worker(
    bootstrap: str,
    group: str,
    *,
    raw_topic: str,
    readings_topic: str,
    expected: int,
    window: float,
    startup_timeout: float = 90.0,
    alive: Callable[[], bool] | None = None,
    state_topics: Sequence[str] = (),
) -> Progress:
    """Wait for the worker's first output, then until it caught up or ``window`` s passed.

    Caught up = the group committed every raw record and every message of the readings
    topic (the analyze agent commits a batch of readings only after it was evaluated
    and, for closed windows, written to the store). Once caught up, the times of the
    first readings batch and of the newest record of ``state_topics`` (the analysis's
    changelogs) time the run exactly (`Progress.first_output_time`, `done_time`).
    """
    progress = Progress()
    started = time.monotonic()
    async with GroupWatch(bootstrap, group) as watch:
        while True:
            now = time.monotonic()
            if alive is not None and not alive():
                msg = "the worker exited"
                raise RuntimeError(msg)
            outputs = await watch.end(readings_topic)
            if progress.first_output_at is None:
                if outputs > 0:
                    progress.first_output_at = now
                elif now - started > startup_timeout:
                    msg = "no reading came out of the worker in time"
                    raise RuntimeError(msg)
            else:
                # Raw records are read by the worker's intake, in a group of its own.
                progress.processed = await watch.committed(raw_topic, intake_group(group))
                analyzed = await watch.committed(readings_topic)
                progress.outputs = outputs
                if progress.processed >= expected and analyzed >= outputs:
                    progress.done_at = now
                    progress.caught_up = True
                    await _time_exactly(watch, progress, readings_topic, state_topics)
                    return progress
                if now - progress.first_output_at > window:
                    progress.done_at = now
                    return progress
            await asyncio.sleep(0.25)


async def _time_exactly(
    watch: GroupWatch, progress: Progress, readings_topic: str, state_topics: Sequence[str]
) -> None:
    """Fill in the record times of a caught-up run's first output and last state write."""
    if not state_topics:
        return
    progress.first_output_time = await watch.record_time(readings_topic, last=False)
    ends = [await watch.record_time(topic, last=True) for topic in state_topics]
    known = [end for end in ends if end is not None]
    progress.done_time = max(known) if known else None
