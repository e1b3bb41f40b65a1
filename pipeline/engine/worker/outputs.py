"""Where the agents' emits go, one call per batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from pipeline.engine.emit import Emit
from pipeline.engine.worker.tables import ChangelogRecord
from pipeline.kafka.batch_sender import BatchSender
from pipeline.kafka.clients import learn_topics, output_producer
from pipeline.metrics import Metrics
from pipeline.settings import Settings

__all__ = ["Outputs", "Trail", "all_of"]


class Outputs(Service):
    """Where the worker's emits go, one call per batch, through one producer of its own.

    At-least-once: one `send_batch` per partition, waiting for the broker's
    acknowledgement (`acks=all`, idempotent: see `output_producer`), so a batch's outputs
    are on the broker before its offsets are committed. There is no exactly-once mode: a
    redelivered batch yields byte-identical records with the same versions, which
    consumers deduplicate (the redelivery contract, docs/incidents.md).
    """

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        metrics: Metrics,
        *,
        max_message_bytes: int,
        topics: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_message_bytes = max_message_bytes
        self.topics = list(topics)
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.logger = logging.getLogger("pipeline.engine.worker.outputs")
        self.producer: AIOKafkaProducer | None = None
        self._retired: set[asyncio.Future[None]] = set()
        self._renewing = asyncio.Lock()
        self.sender = BatchSender(
            self._producer,
            renew=self._renew,
            on_retry=self._retrying,
            stopping=lambda: bool(app.should_stop),
        )

    async def on_start(self) -> None:
        self.producer = self._new_producer()
        await self.producer.start()
        await self._learn_topics(self.producer)

    async def _learn_topics(self, producer: AIOKafkaProducer) -> None:
        """Every output topic known up front (see `learn_topics`): the topology's and the
        tables' changelogs."""
        changelogs = [table.changelog_topic.get_topic_name() for table in self.app.tables.values()]
        await learn_topics(producer, [*self.topics, *changelogs])

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        for retiring in list(self._retired):
            retiring.cancel()

    async def _renew(self) -> None:
        """A new producer for the retries (see `BatchSender`); the old one finishes what
        it has in flight for other senders, then stops, in the background. If the broker
        cannot be reached to start the new one, the old one stays for now."""
        async with self._renewing:
            fresh = self._new_producer()
            try:
                await fresh.start()
                await self._learn_topics(fresh)
            except KafkaError as exc:
                self.logger.warning("cannot start a new outputs producer yet (%s)", exc)
                await fresh.stop()
                return
            old, self.producer = self.producer, fresh
            if old is not None:
                retiring = asyncio.ensure_future(old.stop())
                self._retired.add(retiring)
                retiring.add_done_callback(self._retired.discard)

    def _new_producer(self) -> AIOKafkaProducer:
        client_id = f"{self.settings.worker_id}-outputs"
        return output_producer(self.settings, client_id, self.max_message_bytes)

    def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            msg = "the outputs producer is not started"
            raise RuntimeError(msg)
        return self.producer

    def _retrying(self, error: BaseException, delay: float) -> None:
        self.logger.error("the broker refused outputs (%s); retrying in %.1fs", error, delay)

    async def send(self, emits: Sequence[Emit | ChangelogRecord]) -> None:
        """Produce every emit; return once the broker has them (at-least-once)."""
        if emits:
            await self.sender.send_all(emits)


async def all_of(*steps: Awaitable[Any]) -> None:
    """Run `steps` together and wait for every one of them; raise the first failure.

    Why not a bare `asyncio.gather`: it returns at the first failure and leaves the other
    steps running, unobserved, while the caller goes on."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


class Trail:
    """Passes' deliveries left in flight behind the agent, as an `async with` block: each
    pass's outputs (with its store writes), then its state changes.

    Why: a delivery waits on the broker and the store, and the agent sat idle meanwhile:
    on a loaded machine a pass ran for ~220 ms, then waited ~130 ms for its outputs and
    the store and ~225 ms for its changelog records. With this, the next pass runs while
    the previous one is delivered, and its outputs travel while the previous state does.

    Order is kept: a pass's outputs start once the previous pass's outputs are done (two
    at once could interleave one partition's records), and its state once its own outputs
    and the previous pass's state are done (so a state on the broker still means its
    outputs are). A block left normally waits for the last state, so a batch is
    acknowledged only once all of it is on the broker. A block left by an error does not
    wait: the batch is not acknowledged.
    """

    def __init__(self) -> None:
        self._outputs: asyncio.Future[None] | None = None
        self._state: asyncio.Future[None] | None = None

    async def then(
        self, outputs: Callable[[], Awaitable[None]], state: Callable[[], Awaitable[None]]
    ) -> None:
        """Once the previous pass's outputs are done, start this pass's; its state follows
        them (and the previous state) in the background. A failure of an earlier step is
        raised here."""
        previous_state = self._state
        if self._outputs is not None:
            await self._outputs
        if previous_state is not None and previous_state.done():
            previous_state.result()
        current = self._outputs = asyncio.ensure_future(outputs())
        self._state = asyncio.ensure_future(_after(current, previous_state, state))

    async def settle(self) -> None:
        """Wait until everything handed over is done; a failure is raised here."""
        steps = [step for step in (self._outputs, self._state) if step is not None]
        self._outputs = self._state = None
        for step in steps:  # a failed output fails its state too: the first raise is enough
            step.add_done_callback(_observed)
        for step in steps:
            await step

    async def __aenter__(self) -> Trail:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            await self.settle()
            return
        for step in (self._outputs, self._state):  # the batch failed already
            if step is not None:
                step.add_done_callback(_observed)
        self._outputs = self._state = None


async def _after(
    outputs: asyncio.Future[None],
    previous: asyncio.Future[None] | None,
    state: Callable[[], Awaitable[None]],
) -> None:
    await outputs
    if previous is not None:
        await previous
    await state()


def _observed(future: asyncio.Future[None]) -> None:
    """Mark a step's outcome as seen (no "exception was never retrieved" at exit)."""
    if not future.cancelled():
        future.exception()
