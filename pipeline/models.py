"""Canonical events: what every stage reads and writes, and what downstream services consume.

Why pydantic: one definition gives validation at the edge, JSON in and out (fast, in Rust),
and the published JSON Schemas in `schemas/`. Every model is frozen and carries
`schema_version`; every time is timezone-aware and normalized to UTC.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

SCHEMA_VERSION = 1


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        msg = "must be a finite number"
        raise ValueError(msg)
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware time, converted to UTC; naive times are refused."""

Finite = Annotated[float, AfterValidator(_finite)]


def _b64decode(value: Any) -> Any:
    if isinstance(value, str):
        return base64.b64decode(value)
    return value


Base64Bytes = Annotated[
    bytes,
    PlainSerializer(lambda raw: base64.b64encode(raw).decode("ascii"), return_type=str),
]


class Severity(StrEnum):
    """China's four-colour warning scale: blue IV < yellow III < orange II < red I."""

    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        """0 for blue up to 3 for red, for comparisons."""
        return _SEVERITY_RANK[self]

    # Ordered by rank, not alphabetically ("orange" < "red" < "yellow" would be wrong).
    def __lt__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return str.__lt__(self, other)

    def __le__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank <= other.rank
        return str.__le__(self, other)

    def __gt__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank > other.rank
        return str.__gt__(self, other)

    def __ge__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank >= other.rank
        return str.__ge__(self, other)


_SEVERITY_RANK = {Severity.blue: 0, Severity.yellow: 1, Severity.orange: 2, Severity.red: 3}


class AreaLevel(StrEnum):
    """Administrative levels, top down."""

    city = "city"
    district = "district"
    street = "street"
    grid = "grid"
    community = "community"

    @property
    def depth(self) -> int:
        """0 for city, increasing downwards."""
        return _LEVEL_DEPTH[self]


_LEVEL_DEPTH = {level: i for i, level in enumerate(AreaLevel)}


class IncidentState(StrEnum):
    """Lifecycle states; an automatic clear is a resolve."""

    open = "open"
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    resolved = "resolved"
    closed = "closed"


class IncidentKind(StrEnum):
    """Why an incident exists."""

    threshold_breach = "threshold_breach"
    report_cluster = "report_cluster"
    urgent_report = "urgent_report"


class IncidentAction(StrEnum):
    """Every change an incident can go through (from detection or from handling units)."""

    open = "open"
    upgrade = "upgrade"
    evidence = "evidence"
    dispatch = "dispatch"
    acknowledge = "acknowledge"
    resolve = "resolve"
    auto_resolve = "auto_resolve"
    close = "close"
    reopen = "reopen"
    comment = "comment"
    escalate = "escalate"


class RejectReason(StrEnum):
    """Stable, machine-readable reasons a record was dead-lettered."""

    invalid_json = "invalid_json"
    unknown_format = "unknown_format"
    schema_violation = "schema_violation"
    unknown_sensor = "unknown_sensor"
    unknown_metric = "unknown_metric"
    unknown_category = "unknown_category"
    unit_not_convertible = "unit_not_convertible"
    out_of_range = "out_of_range"
    outside_jurisdiction = "outside_jurisdiction"
    oversized = "oversized"
    duplicate = "duplicate"
    unknown_incident = "unknown_incident"
    invalid_transition = "invalid_transition"
    unit_outside_area = "unit_outside_area"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeoPoint(_Event):
    """WGS 84 coordinates."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class AdminCodes(_Event):
    """The administrative areas an event falls in (codes from the topology)."""

    district: str | None = None
    street: str | None = None
    grid: str | None = None
    community: str | None = None


class Reading(_Event):
    """One measurement of one metric, in the catalogue's canonical unit."""

    event_id: str = Field(min_length=1, max_length=200)
    sensor_id: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=100)
    value: Finite
    unit: str
    observed_at: UtcDatetime
    location: GeoPoint | None = None
    areas: AdminCodes = AdminCodes()
    source_format: str = "canonical"
    schema_version: int = SCHEMA_VERSION


class CitizenReport(_Event):
    """A report from a hotline, app or Open311; `description` has personal data masked."""

    report_id: str = Field(min_length=1, max_length=200)
    channel: str
    category: str
    description: str = Field(default="", max_length=4000)
    location: GeoPoint | None = None
    areas: AdminCodes = AdminCodes()
    reported_at: UtcDatetime
    urgent: bool = False
    source_format: str = "canonical"
    schema_version: int = SCHEMA_VERSION


MAX_EVIDENCE_IDS = 50
"""Evidence keeps at most this many event ids (the last ones given); `count` counts all."""


def _bound_ids(ids: tuple[str, ...]) -> tuple[str, ...]:
    return ids[-MAX_EVIDENCE_IDS:] if len(ids) > MAX_EVIDENCE_IDS else ids


class Evidence(_Event):
    """What triggered an incident and what has been seen since (event ids bounded)."""

    event_ids: Annotated[tuple[str, ...], AfterValidator(_bound_ids)] = ()
    peak_value: Finite | None = None
    threshold: Finite | None = None
    first_at: UtcDatetime
    last_at: UtcDatetime
    count: int = Field(default=1, ge=0)


class Incident(_Event):
    """One problem, owned by one area at one level, followed until it is closed."""

    incident_id: str
    rule_id: str
    kind: IncidentKind
    severity: Severity
    subject: str
    subject_kind: str = Field(pattern="^(sensor|area)$")
    metric: str | None = None
    category: str | None = None
    evidence: Evidence
    owner_level: AreaLevel
    owner_area: str
    areas: AdminCodes
    state: IncidentState = IncidentState.open
    opened_at: UtcDatetime
    updated_at: UtcDatetime
    ack_due: UtcDatetime | None = None
    resolve_due: UtcDatetime | None = None
    escalations: int = Field(default=0, ge=0)
    version: int = Field(default=1, ge=1)
    last_action: IncidentAction = IncidentAction.open
    schema_version: int = SCHEMA_VERSION


class IncidentUpdate(_Event):
    """A handling unit's action on an incident, sent on the updates topic."""

    update_id: str = Field(min_length=1, max_length=200)
    incident_id: str = Field(min_length=1, max_length=200)
    action: IncidentAction
    unit: str = Field(min_length=1, max_length=100, description="acting unit's area code")
    at: UtcDatetime
    note: str | None = Field(default=None, max_length=4000)
    schema_version: int = SCHEMA_VERSION


class AuditEvent(_Event):
    """One transition, hash-chained to the previous one of the same incident."""

    incident_id: str
    seq: int = Field(ge=1)
    action: IncidentAction
    actor: str
    at: UtcDatetime
    from_state: IncidentState | None
    to_state: IncidentState
    reason: str | None = None
    prev_hash: str = Field(pattern="^[0-9a-f]{64}$")
    hash: str = Field(pattern="^[0-9a-f]{64}$")
    schema_version: int = SCHEMA_VERSION


class AggregateRow(_Event):
    """Statistics of one metric in one area over one tumbling window."""

    window_start: UtcDatetime
    window_end: UtcDatetime
    level: AreaLevel
    area_code: str
    metric: str
    count: int = Field(ge=0)
    sum: Finite
    min: Finite
    max: Finite
    mean: Finite
    breaches: int = Field(default=0, ge=0)
    schema_version: int = SCHEMA_VERSION


class DeadLetter(_Event):
    """A record that could not be used, with why, where it came from, and its bytes."""

    reason: RejectReason
    detail: str
    stage: str = "normalize"
    source_topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    original: Base64Bytes
    received_at: UtcDatetime
    schema_version: int = SCHEMA_VERSION

    @field_validator("original", mode="before")
    @classmethod
    def _decode_original(cls, value: Any) -> Any:
        return _b64decode(value)


class Rejection(_Event):
    """A value (never an exception) that a pure stage returns for bad input."""

    reason: RejectReason
    detail: str
