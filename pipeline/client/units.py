"""A handling unit's side of the contract: signed updates, and waiting for their replies."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from pipeline.client.base import AsyncResource
from pipeline.client.errors import NoReply
from pipeline.kafka.clients import client_options
from pipeline.kafka.producer import key_partition
from pipeline.models import IncidentUpdate, UnitAction, UpdateReply
from pipeline.rules.units import sign
from pipeline.settings import Settings
from pipeline.topology.topics import Topics

__all__ = ["UnitClient", "reply_partition"]


def reply_partition(incident_id: str, partitions: int) -> int:
    """The partition of the replies topic that carries an incident's replies (Kafka's
    default keyed partitioner, which the pipeline's producer uses)."""
    return key_partition(incident_id.encode(), partitions)


class UnitClient(AsyncResource):
    """Sends one unit's updates, signed with its private key, and waits for the replies.

    `send` returns the :class:`~pipeline.models.UpdateReply`: check `accepted`, and
    `reason` when it is False. `send_update` sends a ready-made update (a retry of one
    whose reply never came keeps its `update_id`: the pipeline refuses a second copy as a
    duplicate, so a retry never acts twice).
    """

    def __init__(
        self, settings: Settings, *, prefix: str, unit: str, private_key: Ed25519PrivateKey
    ) -> None:
        topics = Topics(prefix=prefix)
        self.updates_topic = topics.name("incident_updates")
        self.replies_topic = topics.name("incident_replies")
        self.unit = unit
        self.private_key = private_key
        options = client_options(settings)
        self.producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
        self.replies = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
        self._one_at_a_time = asyncio.Lock()  # the reply consumer follows one partition

    async def start(self) -> None:
        """Connect the producer and the reply reader."""
        await self.producer.start()
        try:
            await self.replies.start()
        except BaseException:
            await self.producer.stop()
            raise

    async def close(self, *, clean: bool) -> None:
        """Disconnect both."""
        try:
            await self.replies.stop()
        finally:
            await self.producer.stop()

    def update(
        self, incident_id: str, action: UnitAction | str, note: str | None = None
    ) -> IncidentUpdate:
        """A new update of this unit, with a fresh `update_id` and the current time."""
        return IncidentUpdate(
            update_id=f"{self.unit}:{uuid.uuid4()}",
            incident_id=incident_id,
            action=UnitAction(action),
            unit=self.unit,
            at=datetime.now(UTC),
            note=note,
        )

    async def send(
        self,
        incident_id: str,
        action: UnitAction | str,
        *,
        note: str | None = None,
        timeout: float = 30.0,
    ) -> UpdateReply:
        """Send an update and wait for its reply (:class:`NoReply` after `timeout` s)."""
        return await self.send_update(self.update(incident_id, action, note), timeout=timeout)

    async def send_update(self, update: IncidentUpdate, *, timeout: float = 30.0) -> UpdateReply:
        """Sign and send `update`, then wait for the reply that carries its id."""
        value = update.model_dump_json().encode()
        return await self.send_raw(
            update.incident_id, update.update_id, value, [sign(value, self.private_key)],
            timeout=timeout,
        )  # fmt: skip

    async def send_raw(
        self,
        incident_id: str,
        update_id: str,
        value: bytes,
        headers: list[tuple[str, bytes]],
        *,
        timeout: float = 30.0,
    ) -> UpdateReply:
        """Send exactly these bytes and headers, keyed by `incident_id`, and wait for the
        reply to `update_id` (for tests and tools that build their own records)."""
        async with self._one_at_a_time:
            partition = await self._reply_partition(incident_id, timeout)
            self.replies.assign([partition])
            await self.replies.seek_to_end(partition)
            await self.replies.position(partition)  # fixed before sending: no reply missed
            await self.producer.send_and_wait(
                self.updates_topic, value=value, key=incident_id.encode(), headers=headers
            )
            return await self._await_reply(partition, update_id, timeout)

    async def _reply_partition(self, incident_id: str, timeout: float) -> TopicPartition:
        try:
            partitions = await asyncio.wait_for(
                self.producer.partitions_for(self.replies_topic), timeout
            )
        except (TimeoutError, KafkaError) as exc:
            msg = f"topic {self.replies_topic} is not there (run cityops topics create): {exc}"
            raise NoReply(msg) from exc
        number = reply_partition(incident_id, len(partitions))
        return TopicPartition(self.replies_topic, number)

    async def _await_reply(
        self, partition: TopicPartition, update_id: str, timeout: float
    ) -> UpdateReply:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            batch = await self.replies.getmany(partition, timeout_ms=int(min(left, 1.0) * 1000))
            for record in batch.get(partition, []):
                try:
                    reply = UpdateReply.model_validate_json(record.value or b"")
                except ValidationError:
                    continue  # not a reply this client can read: someone else's concern
                if reply.update_id == update_id:
                    return reply
        msg = f"no reply to update {update_id} within {timeout:g}s"
        raise NoReply(msg)
