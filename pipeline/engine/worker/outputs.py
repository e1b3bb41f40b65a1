"""Where the agents' emits go, one call per batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faust

from pipeline.engine.emit import Emit
from pipeline.engine.worker.tables import ChangelogRecord
from pipeline.kafka.producer import BatchSender
from pipeline.metrics import Metrics
from pipeline.settings import Settings

__all__ = ["Outputs"]


class Outputs:
    """Where the agents' emits go, one call per batch.

    At-least-once: one `send_batch` per partition through the app's own producer (Faust
    flushes it before every commit), waiting for the broker's acknowledgement. Exactly-once:
    record by record through Faust, whose transaction manager must see every send.
    """

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.transactional = settings.processing_guarantee == "exactly_once"
        self.log = logging.getLogger("pipeline.engine.worker.app")
        self._topics: dict[str, faust.TopicT] = {}
        self._batches = BatchSender(self._producer, on_retry=self._retrying)

    def _producer(self) -> Any:
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer under Faust's

    def _retrying(self, error: BaseException, delay: float) -> None:
        self.log.error("the broker refused outputs (%s); retrying in %.1fs", error, delay)

    async def send(self, emits: Sequence[Emit | ChangelogRecord]) -> None:
        """Produce every emit; return once the broker has them (at-least-once)."""
        if not emits:
            return
        if not self.transactional:
            await self._batches.send_all(emits)
            return
        for emit in emits:
            topic = self._topics.get(emit.topic)
            if topic is None:
                topic = self._topics[emit.topic] = self.app.topic(
                    emit.topic, key_serializer="raw", value_serializer="raw"
                )
            headers = list(getattr(emit, "headers", ()))
            await topic.send(key=emit.key, value=emit.value, headers=headers)
