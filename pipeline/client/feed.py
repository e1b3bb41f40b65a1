"""Follow incident topics as typed incidents, resuming from the group's committed offsets."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from pipeline.client.base import AsyncResource
from pipeline.client.errors import IncompatibleSchema
from pipeline.kafka.clients import client_options
from pipeline.models import SCHEMA_VERSION, Incident
from pipeline.settings import Settings
from pipeline.topology.topics import Topics

__all__ = ["Delivery", "IncidentFeed", "parse_incident"]

SUPPORTED_VERSION = SCHEMA_VERSION


def parse_incident(value: bytes) -> Incident:
    """An incident record's value as the model. Fields this client does not know (added
    later within the same schema version) are ignored; another `schema_version`, or a
    record that is no incident, raises :class:`IncompatibleSchema`."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        msg = "the record is not JSON"
        raise IncompatibleSchema(msg) from exc
    if not isinstance(doc, dict):
        msg = "the record is not a JSON object"
        raise IncompatibleSchema(msg)
    version = doc.get("schema_version")
    if version != SUPPORTED_VERSION:
        msg = f"schema_version {version!r}: this client reads version {SUPPORTED_VERSION}"
        raise IncompatibleSchema(msg)
    known = {key: item for key, item in doc.items() if key in Incident.model_fields}
    try:
        return Incident.model_validate(known)
    except ValidationError as exc:
        msg = f"not a valid incident: {str(exc)[:300]}"
        raise IncompatibleSchema(msg) from exc


@dataclass(frozen=True, slots=True)
class Delivery:
    """One incident record and where it was read."""

    incident: Incident
    topic: str
    partition: int
    offset: int


class IncidentFeed(AsyncResource):
    """Follows incident topics in a consumer group, yielding :class:`Delivery` records.

    At-least-once: the offsets of what was yielded are committed when the next batch is
    fetched (so after the loop body handled them) and on a clean exit; a service that
    crashes re-reads what it had not finished. The topics are compacted snapshots: keep
    the highest `version` per `incident_id`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        prefix: str,
        group_id: str,
        districts: Sequence[str] = (),
        streets: Sequence[str] = (),
        city: bool = False,
        batch_timeout: float = 1.0,
    ) -> None:
        topics = Topics(prefix=prefix)
        self.topics = [topics.name("incidents_district", code) for code in districts]
        self.topics += [topics.name("incidents_street", code) for code in streets]
        if city:
            self.topics.append(topics.name("incidents_city"))
        if not self.topics:
            msg = "follow at least one district, street or the city"
            raise ValueError(msg)
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            **client_options(settings),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        self.batch_timeout = batch_timeout
        self._buffer: deque[ConsumerRecord[bytes, bytes]] = deque()
        self._handled: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Join the consumer group."""
        await self.consumer.start()

    async def close(self, *, clean: bool) -> None:
        """Commit what was handled (when the body ended cleanly) and leave the group."""
        try:
            if clean:
                await self.commit()
        finally:
            await self.consumer.stop()

    def __aiter__(self) -> IncidentFeed:
        return self

    async def __anext__(self) -> Delivery:
        while not self._buffer:
            await self.commit()  # everything yielded so far was handled
            batch = await self.consumer.getmany(timeout_ms=int(self.batch_timeout * 1000))
            for records in batch.values():
                self._buffer.extend(records)
        record = self._buffer.popleft()
        incident = parse_incident(record.value or b"")
        self._handled[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return Delivery(incident, record.topic, record.partition, record.offset)

    async def commit(self) -> None:
        """Commit the offsets of every record yielded so far."""
        if not self._handled:
            return
        offsets: dict[TopicPartition, Any] = {
            tp: OffsetAndMetadata(offset, "") for tp, offset in self._handled.items()
        }
        await self.consumer.commit(offsets)
        self._handled.clear()
