"""Raw intake: the raw topics read in batches with aiokafka, normalized, sent, committed.

Why not a Faust agent: Faust charges ~200 µs per message whatever the message holds
(shared/notes/faust.md), and external producers send one reading per message, so the
raw topics would cap a worker at a few thousand readings per second. Normalization is
stateless, so a plain batch consumer does it inside the worker: `getmany`, normalize the
whole batch (readings leave as one batch message per district), send, wait for the
broker's acknowledgements, commit. One batch is in flight while the next is fetched and
normalized, so the broker's acknowledgement time overlaps our work instead of adding to
it; batches are still sent and committed one after the other, in order. It starts and
stops with the Faust app, counts in the same metrics, and its consumer group
(`<worker id>.intake`) shares the raw partitions between workers like any group.

At-least-once: offsets are committed only after the batch's outputs are acknowledged. A
worker killed (or a partition revoked) between send and commit re-reads the batch, and
the readings come out again with the same raw origins, which the stages downstream
apply once. A stop never waits for a batch: an unfinished batch is simply not committed.
A failure of the intake ends the worker like a failed agent batch (status 70): a worker
whose intake died silently would look alive and normalize nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition
from mode import Service

from pipeline.engine.emit import Emit, Record, partition_name
from pipeline.engine.worker.failure import unacknowledged_on_failure
from pipeline.engine.worker.wiring import Wiring
from pipeline.kafka.clients import client_options

__all__ = ["RawIntake", "intake_group"]

log = logging.getLogger("pipeline.engine.worker.intake")


def intake_group(worker_id: str) -> str:
    """The raw intake's consumer group for a worker id (the Faust app's group)."""
    return f"{worker_id}.intake"


class _Revoked(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Forget the normalizer's duplicate window for partitions another worker now owns."""

    def __init__(self, intake: RawIntake) -> None:
        self.intake = intake

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.intake.w.pipeline.normalize.forget()
        for tp in revoked:
            self.intake._next.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


class RawIntake(Service):
    """The raw topics' consumer: batches through `Pipeline.handle`, outputs, commit."""

    def __init__(self, w: Wiring, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.w = w
        self.consumer: AIOKafkaConsumer | None = None
        self._next: dict[TopicPartition, int] = {}
        self._in_flight: asyncio.Future[None] | None = None

    async def on_start(self) -> None:
        settings = self.w.settings
        self.consumer = AIOKafkaConsumer(
            **client_options(settings),
            client_id=f"{settings.worker_id}-intake",
            group_id=intake_group(settings.worker_id),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_size,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        await self.consumer.start()
        self.consumer.subscribe(self.w.pipeline.topics("intake"), listener=_Revoked(self))

    async def on_stop(self) -> None:
        # No commit here: an unfinished batch is re-read by the next owner.
        if self._in_flight is not None:
            self._in_flight.cancel()
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.timer(1.0)
    async def _watch_broker(self) -> None:
        """How long the broker has been silent: the newest fetch answer (empty ones count)
        of any assigned raw partition. During an outage it grows; the worker waits."""
        consumer = self.consumer
        if consumer is None or not consumer.assignment():
            return
        heard = [consumer.last_poll_timestamp(tp) or 0 for tp in consumer.assignment()]
        if max(heard) > 0:
            self.w.metrics.broker_silence.set(max(0.0, time.time() - max(heard) / 1000))

    @Service.task
    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None  # noqa: S101  # started in on_start
        timeout_ms = round(self.w.settings.batch_within_seconds * 1000)
        while not self.should_stop:
            async with unacknowledged_on_failure("intake"):
                fetched = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.w.settings.batch_size
                )
                await self._learn_positions(consumer)
                if fetched:
                    emits, offsets = self._normalize(consumer, fetched)
                    await self._settle_in_flight()
                    self._in_flight = asyncio.ensure_future(self._deliver(consumer, emits, offsets))
                else:
                    await self._settle_in_flight()

    async def _learn_positions(self, consumer: AIOKafkaConsumer) -> None:
        """Where each newly assigned raw partition starts (what `_caught_up` compares).

        A partition revoked while its position is awaited (aiokafka waits for the
        committed offset, and a rebalance of two workers starting together can take it
        away meanwhile) raises `IllegalStateError`: it is skipped, as its new owner reads
        it. That error used to end the worker (status 70; seen once in a bench run of two
        workers)."""
        for tp in consumer.assignment() - self._next.keys():
            try:
                self._next[tp] = await consumer.position(tp)
            except IllegalStateError:
                continue

    async def _settle_in_flight(self) -> None:
        """Wait for the previous batch's send and commit; its failure is raised here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight

    def _normalize(
        self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[Any]]
    ) -> tuple[list[Emit], dict[TopicPartition, int]]:
        records = [
            Record(m.topic, m.key, m.value, tuple(m.headers or ()), m.partition, m.offset,
                   m.timestamp)
            for messages in fetched.values()
            for m in messages
        ]  # fmt: skip
        offsets = {tp: messages[-1].offset + 1 for tp, messages in fetched.items()}
        self._next.update(offsets)
        assigned = [partition_name(tp.topic, tp.partition) for tp in consumer.assignment()]
        out = self.w.run("intake", records, self._caught_up(consumer), assigned)
        return out.emits, offsets

    async def _deliver(
        self, consumer: AIOKafkaConsumer, emits: list[Emit], offsets: dict[TopicPartition, int]
    ) -> None:
        """Send a batch's outputs, then commit its offsets once the broker has them."""
        await self.w.outputs.send(emits)
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Revoked meanwhile: the next owner re-reads the batch (applied once downstream).
            log.warning("intake commit failed (%s); the batch will be read again", exc)
            return
        await self._report_lag(consumer, offsets)

    def _caught_up(self, consumer: AIOKafkaConsumer) -> list[str]:
        """Assigned raw partitions read to their end as far as the last fetch knows."""
        done: list[str] = []
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None and self._next.get(tp, -1) >= end:
                done.append(partition_name(tp.topic, tp.partition))
        return done

    async def _report_lag(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        gauge = self.w.metrics.intake_lag
        assigned = consumer.assignment()
        for tp, position in offsets.items():
            if tp not in assigned:
                continue  # revoked while the batch was in flight: its new owner reports it
            end = consumer.highwater(tp)
            if end is not None:
                self.w.metrics.child(gauge, tp.topic, str(tp.partition)).set(end - position)
        await asyncio.sleep(0)
