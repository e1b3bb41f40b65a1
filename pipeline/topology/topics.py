"""The ``topics`` section: topic naming, sizing and retention.

Why: topic names come from the topology (a prefix plus fixed suffixes), never from code;
:meth:`Topics.name` is the only place they are built, :meth:`Topics.spec` the only place
their partitions and cleanup policy are decided.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Literal, cast, get_args

from pydantic import Field, model_validator

from pipeline.topology.base import Frozen
from pipeline.topology.durations import RetentionPeriod
from pipeline.topology.errors import ErrorList

__all__ = [
    "MAX_TOPIC_NAME",
    "OutputKind",
    "TOPIC_KINDS",
    "Retention",
    "TopicKind",
    "TopicSpec",
    "Topics",
    "check_topic_names",
]

TopicKind = Literal[
    "raw_sensors",
    "raw_reports",
    "readings",
    "reports",
    "deadletter",
    "incidents_city",
    "incidents_district",
    "incidents_street",
    "incident_updates",
    "incident_replies",
    "incident_events",
    "audit",
]
TOPIC_KINDS: tuple[str, ...] = get_args(TopicKind)
_TOPIC_SUFFIX: dict[str, str] = {
    "raw_sensors": "sensors.raw",
    "raw_reports": "reports.raw",
    "readings": "readings",
    "reports": "reports",
    "deadletter": "deadletter",
    "incidents_city": "incidents.city",
    "incidents_district": "incidents.district.",
    "incidents_street": "incidents.street.",
    "incident_updates": "incidents.updates",
    "incident_replies": "incidents.replies",
    "incident_events": "incidents.events",
    "audit": "incidents.audit",
}
#: Topics whose records' timestamps are their arrival (LogAppendTime): the raw input, and
#: the units' updates (their receive time drives SLAs, reopen windows and the audit).
_ARRIVAL_STAMPED = frozenset({"raw_sensors", "raw_reports", "incident_updates"})

_TOPIC_RETENTION: dict[str, str] = {
    "raw_sensors": "raw",
    "raw_reports": "raw",
    "readings": "readings",
    "reports": "reports",
    "deadletter": "deadletter",
    "incidents_city": "incidents",
    "incidents_district": "incidents",
    "incidents_street": "incidents",
    "incident_updates": "incidents",
    "incident_replies": "incidents",
    "incident_events": "incidents",
    "audit": "audit",
}
# Incident topics carry the latest snapshot per incident id: state, so compacted. The broker
# compacts only closed segments, and only when enough of the log is dirty: a segment rolls
# at least hourly and a tenth of dirty log is enough, else a topic stayed uncompacted for
# the default week-long segment.
_COMPACTED = frozenset({"incidents_city", "incidents_district", "incidents_street"})
_COMPACTION = {"segment.ms": str(3_600_000), "min.cleanable.dirty.ratio": "0.1"}
MAX_TOPIC_NAME = 249


class Retention(Frozen):
    """How long each family of topics keeps records (``-1`` / ``forever``: keep forever)."""

    raw: RetentionPeriod = Field(default="3d", validate_default=True)
    readings: RetentionPeriod = Field(default="7d", validate_default=True)
    reports: RetentionPeriod = Field(default="30d", validate_default=True)
    incidents: RetentionPeriod = Field(default="365d", validate_default=True)
    deadletter: RetentionPeriod = Field(default="30d", validate_default=True)
    audit: RetentionPeriod = None


@dataclass(frozen=True)
class TopicSpec:
    """One topic a deployment needs: what topic creation is told."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


#: Kinds whose partition count may differ from ``partitions``: what the worker only writes.
#: The topics it reads (raw, readings, reports, incident events and updates) share the
#: partitions of its state tables, so they all take ``partitions``.
OutputKind = Literal[
    "deadletter",
    "incidents_city",
    "incidents_district",
    "incidents_street",
    "incident_replies",
    "audit",
]
Partitions = Annotated[int, Field(ge=1, le=1000)]


class Topics(Frozen):
    """Topic naming and sizing; :meth:`name` is the only place topic names are built.

    Partitions per kind: ``kind_partitions`` (output kinds only), else ``area_partitions``
    for the per-district and per-street topics, else ``partitions``. A city with 215
    street topics wants them small (1 partition each: one street's incidents are few).
    """

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{0,100}$")] = "cityops."
    partitions: Partitions = 6
    area_partitions: Partitions = 1
    kind_partitions: dict[OutputKind, Partitions] = Field(default_factory=dict)
    replication: Annotated[int, Field(ge=1, le=16)] = 1
    min_insync_replicas: Annotated[int | None, Field(ge=1, le=16)] = None
    """Replicas that must have a record before an ``acks=all`` write counts (the topic's
    ``min.insync.replicas``); None leaves the broker's default. With replication 3, 2 lets
    one broker die without losing or refusing a write."""
    retention: Retention = Retention()
    max_message_bytes: Annotated[int, Field(ge=65_536, le=67_108_864)] = 1_048_576
    """The largest record any topic takes (its ``max.message.bytes``). The rest follows
    from it: a raw message above it is dead-lettered ``oversized``, a dead letter keeps at
    most a quarter of it of the original, an incident's events are split into messages of
    at most a quarter of it, and the producers' request size is set just above it."""

    @property
    def part_bytes(self) -> int:
        """The most bytes of one large part of a record (a dead letter's original, an
        incident's events): a quarter of ``max_message_bytes`` (base64 and the envelope
        fit beside it), at most 256 KiB."""
        return min(262_144, self.max_message_bytes // 4)

    @model_validator(mode="after")
    def _insync_fits_replication(self) -> Topics:
        wanted = self.min_insync_replicas
        if wanted is not None and wanted > self.replication:
            msg = (
                f"min_insync_replicas ({wanted}) cannot exceed replication "
                f"({self.replication}): every acks=all write would be refused"
            )
            raise ValueError(msg)
        return self

    def name(self, kind: TopicKind, area: str | None = None) -> str:
        """The topic for ``kind``; district and street incident topics need the area code."""
        suffix = _TOPIC_SUFFIX.get(kind)
        if suffix is None:
            msg = f"unknown topic kind {kind!r} (known: {', '.join(TOPIC_KINDS)})"
            raise ValueError(msg)
        if kind in ("incidents_district", "incidents_street"):
            if not area or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", area):
                msg = f"topic kind {kind} needs an area code, got {area!r}"
                raise ValueError(msg)
            return f"{self.prefix}{suffix}{area}"
        if area is not None:
            msg = f"topic kind {kind} takes no area"
            raise ValueError(msg)
        return f"{self.prefix}{suffix}"

    def spec(self, kind: TopicKind, area: str | None = None) -> TopicSpec:
        """Name, partitions, replication and config of one topic."""
        retention = getattr(self.retention, _TOPIC_RETENTION[kind])
        ms = "-1" if retention is None else str(round(retention.total_seconds() * 1000))
        if kind in _COMPACTED:
            policy = "compact" if retention is None else "compact,delete"
        else:
            policy = "delete"
        per_area = kind in ("incidents_district", "incidents_street")
        config = {
            "cleanup.policy": policy,
            "retention.ms": ms,
            "max.message.bytes": str(self.max_message_bytes),
        }
        if self.min_insync_replicas is not None:
            config["min.insync.replicas"] = str(self.min_insync_replicas)
        if kind in _COMPACTED:
            config.update(_COMPACTION)
        if kind in _ARRIVAL_STAMPED:
            # The broker stamps arrival: event-time checks trust it, a producer cannot set it.
            config["message.timestamp.type"] = "LogAppendTime"
        partitions = cast(dict[str, int], self.kind_partitions).get(kind)
        if partitions is None:
            partitions = self.area_partitions if per_area else self.partitions
        return TopicSpec(
            name=self.name(kind, area),
            partitions=partitions,
            replication=self.replication,
            config=config,
        )


def check_topic_names(topics: Topics, area_codes: Collection[str]) -> ErrorList:
    """The longest per-area topic name must fit Kafka's limit."""
    if not area_codes:
        return []
    longest = max(len(c) for c in area_codes)
    size = len(topics.prefix) + len("incidents.district.") + longest
    if size > MAX_TOPIC_NAME:
        return [
            (
                "topics.prefix",
                f"too long: topic names would reach {size} "
                f"characters (Kafka allows {MAX_TOPIC_NAME})",
            )
        ]
    return []
