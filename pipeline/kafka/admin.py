"""Create, list and delete topics through Kafka's admin API.

Why: a deployment's topics come from its topology (partitions, replication, compaction);
creating them explicitly, idempotently, beats broker auto-creation with default settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.kafka.clients import Connection, client_options

_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC = 3


class TopicLike(Protocol):
    """What topic creation needs to know about one topic."""

    @property
    def name(self) -> str: ...
    @property
    def partitions(self) -> int: ...
    @property
    def replication(self) -> int: ...
    @property
    def config(self) -> dict[str, str]: ...


class TopicAdminError(Exception):
    """The broker refused a topic operation; `errors` maps topic name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        lines = "; ".join(f"{name}: {msg}" for name, msg in sorted(errors.items()))
        super().__init__(f"topic operation failed: {lines}")


@dataclass
class CreateReport:
    """Which topics this call created and which were already there."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def _client(bootstrap: Connection) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=30_000)


#: Topics per CreateTopics request: small enough that progress shows on a city's 250.
CREATE_CHUNK = 50


async def create_topics(
    bootstrap: Connection,
    specs: Sequence[TopicLike],
    progress: Callable[[int, int], None] | None = None,
) -> CreateReport:
    """Create every topic that does not exist yet; existing ones are left as they are.

    ``progress(done, missing)`` is called after each request and once the new topics all
    have leaders (``done == missing``)."""
    report = CreateReport()
    if not specs:
        return report
    admin = _client(bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in present]
        report.existing = sorted(spec.name for spec in specs if spec.name in present)
        errors: dict[str, str] = {}
        for chunk_start in range(0, len(wanted), CREATE_CHUNK):
            chunk = wanted[chunk_start : chunk_start + CREATE_CHUNK]
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication,
                        topic_configs=dict(spec.config),
                    )
                    for spec in chunk
                ]
            )
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    report.created.append(name)
                elif code == _TOPIC_ALREADY_EXISTS:
                    report.existing.append(name)
                else:
                    errors[name] = f"error {code}: {rest[0] if rest else ''}".strip()
            if progress is not None and chunk_start + len(chunk) < len(wanted):
                progress(chunk_start + len(chunk), len(wanted))
        if errors:
            raise TopicAdminError(errors)
        await _wait_for_leaders(admin, [spec.name for spec in wanted])
        if progress is not None:
            progress(len(wanted), len(wanted))
    finally:
        await admin.close()
    report.created.sort()
    return report


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: Iterable[str], timeout: float = 30.0
) -> None:
    """Wait until every partition of the new topics has a leader, so producers can send."""
    pending = list(names)
    deadline = asyncio.get_running_loop().time() + timeout
    while pending:
        described = await admin.describe_topics(pending)
        pending = [
            topic["topic"]
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(partition["leader"] < 0 for partition in topic["partitions"])
        ]
        if not pending:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TopicAdminError(dict.fromkeys(pending, "no partition leader in time"))
        await asyncio.sleep(0.2)


async def list_topics(bootstrap: Connection, prefix: str = "") -> dict[str, int]:
    """Topic name -> partition count, for topics starting with `prefix`."""
    admin = _client(bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if not names:
            return {}
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def delete_topics(bootstrap: Connection, names: Sequence[str]) -> list[str]:
    """Delete the named topics that exist; return the names deleted."""
    admin = _client(bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        doomed = [name for name in names if name in present]
        if doomed:
            response = await admin.delete_topics(doomed)
            errors = {
                name: f"error {code}"
                for name, code, *_ in response.topic_error_codes
                if code not in (0, _UNKNOWN_TOPIC)
            }
            if errors:
                raise TopicAdminError(errors)
    finally:
        await admin.close()
    return sorted(doomed)
