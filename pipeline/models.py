"""Canonical events: what every stage reads and writes, and what downstream services consume.

Why pydantic: one definition gives validation at the edge, JSON in and out (fast, in Rust),
and the published JSON Schemas in `schemas/`. Every model is frozen and carries
`schema_version`; every time is timezone-aware and normalized to UTC.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    field_validator,
    model_validator,
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
    """Every change an incident can go through (from detection or from handling units):
    :class:`UnitAction` is what a unit may send, :class:`SystemAction` what only the
    pipeline does."""

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


class UnitAction(StrEnum):
    """What a handling unit may send on the updates topic (the only values it accepts)."""

    dispatch = "dispatch"
    acknowledge = "acknowledge"
    resolve = "resolve"
    close = "close"
    reopen = "reopen"
    comment = "comment"


class SystemAction(StrEnum):
    """What only the pipeline does: detection (open, evidence, upgrade, auto_resolve), the
    SLA timer (escalate) and a reopen of a worsening incident a unit had resolved (reopen,
    by ``system``, so it also appears among the unit actions)."""

    open = "open"
    evidence = "evidence"
    upgrade = "upgrade"
    auto_resolve = "auto_resolve"
    escalate = "escalate"
    reopen = "reopen"


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
    clock_skew = "clock_skew"
    too_old = "too_old"
    processing_error = "processing_error"
    unsigned = "unsigned"
    bad_signature = "bad_signature"
    unknown_unit = "unknown_unit"


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

    event_ids: Annotated[tuple[str, ...], AfterValidator(_bound_ids)] = Field(
        default=(), description="Ids of the triggering readings or reports (the first ones)."
    )
    peak_value: Finite | None = Field(
        default=None, description="The worst value seen, in the metric's canonical unit."
    )
    threshold: Finite | None = Field(default=None, description="The threshold it crossed.")
    first_at: UtcDatetime = Field(description="Event time of the first evidence.")
    last_at: UtcDatetime = Field(description="Event time of the latest evidence.")
    count: int = Field(default=1, ge=0, description="Breaching readings or reports, all of them.")


class IncidentLocation(_Event):
    """Where an incident's evidence is: a sensor's registered location, or the centroid of
    the boundary of the incident's lowest area that has one."""

    lat: float = Field(ge=-90, le=90, description="Latitude, WGS 84.")
    lon: float = Field(ge=-180, le=180, description="Longitude, WGS 84.")
    basis: Literal["sensor", "area_centroid"] = Field(
        description="`sensor`: the registered location of the sensor the incident is "
        "about; `area_centroid`: the centroid of the boundary of `area`."
    )
    area: str | None = Field(
        default=None, description="The area whose boundary gave the centroid (None for a sensor)."
    )


class Incident(_Event):
    """One problem, owned by one area at one level, followed until it is closed."""

    incident_id: str = Field(description="Deterministic id, `inc-` + 16 hex digits.")
    rule_id: str = Field(description="The topology rule or report category that opened it.")
    kind: IncidentKind = Field(description="Why the incident exists.")
    severity: Severity = Field(description="China's four-colour scale; only ever rises.")
    subject: str = Field(description="The sensor id, or the area / report it is about.")
    subject_kind: str = Field(pattern="^(sensor|area)$", description="`sensor` or `area`.")
    metric: str | None = Field(default=None, description="The catalogue metric, if any.")
    category: str | None = Field(default=None, description="The report category, if any.")
    evidence: Evidence = Field(
        description="What triggered it and what was seen since, as of `updated_at`; "
        "on the incident topics at most once per `incidents.evidence_interval`."
    )
    owner_level: AreaLevel = Field(description="The level that owns it now (escalation).")
    owner_area: str = Field(description="The area code that owns it now.")
    areas: AdminCodes = Field(description="The areas it lies in (routing: city, district, street).")
    location: IncidentLocation | None = Field(
        default=None, description="Where its evidence is (None when the topology cannot say)."
    )
    state: IncidentState = Field(default=IncidentState.open, description="Lifecycle state.")
    opened_at: UtcDatetime = Field(description="When detection opened it (event time).")
    updated_at: UtcDatetime = Field(
        description="Time of the last change: event time for detection, the pipeline's "
        "receive time for a unit's update, the pipeline's clock for an escalation."
    )
    ack_due: UtcDatetime | None = Field(default=None, description="Acknowledge deadline.")
    resolve_due: UtcDatetime | None = Field(default=None, description="Resolve deadline.")
    escalations: int = Field(default=0, ge=0, description="How often the SLA timer escalated it.")
    reopened: int = Field(default=0, ge=0, description="How often it was reopened.")
    version: int = Field(
        default=1,
        ge=1,
        description="Counts every change (1 at open); the incident topics skip the quiet "
        "ones, so a consumer keeps the record with the highest version.",
    )
    last_action: IncidentAction = Field(
        default=IncidentAction.open, description="The change that made this version."
    )
    schema_version: int = SCHEMA_VERSION


_UNIT_ID = r"^[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9._-]{1,64})?$"
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    if not _MIN_TIME <= value < _MAX_TIME:
        msg = "must be from 2000 up to 2100"
        raise ValueError(msg)
    return value


PlausibleTime = Annotated[UtcDatetime, AfterValidator(_plausible)]
"""A UTC time from the year 2000 up to 2100 (arithmetic on it never overflows)."""


class IncidentUpdate(_Event):
    """A handling unit's action on an incident, sent on the updates topic, keyed by
    incident id, signed in the `cityops-signature` header (see docs/incidents.md)."""

    update_id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique per update: the reply carries it, and a second update with the "
        "same id is refused as a duplicate.",
    )
    incident_id: str = Field(min_length=1, max_length=200, description="The incident acted on.")
    action: UnitAction = Field(description="What the unit does (unit actions only).")
    unit: str = Field(
        pattern=_UNIT_ID,
        description="The acting unit: `<area code>` or `<area code>/<name>`, as listed in "
        "the topology's unit keys file; its key signs the update.",
    )
    at: PlausibleTime = Field(
        description="The sender's own time: kept for information only (the pipeline's "
        "receive time drives the lifecycle); refused beyond the allowed clock skew."
    )
    note: str | None = Field(default=None, max_length=4000, description="Free text.")
    schema_version: int = SCHEMA_VERSION


class UpdateReply(_Event):
    """The pipeline's answer to one update, on the replies topic, keyed by incident id."""

    update_id: str = Field(description="The update answered.")
    incident_id: str = Field(description="The incident the update named.")
    unit: str | None = Field(default=None, description="The unit the update named (if readable).")
    action: str | None = Field(default=None, description="The action the update named.")
    accepted: bool = Field(description="True when the update changed the incident.")
    reason: RejectReason | None = Field(
        default=None, description="Why it was refused (None when accepted)."
    )
    detail: str | None = Field(default=None, description="A human-readable explanation.")
    state: IncidentState | None = Field(
        default=None, description="The incident's state after the update (known incidents)."
    )
    version: int | None = Field(
        default=None, description="The incident's version after the update (known incidents)."
    )
    received_at: UtcDatetime = Field(
        description="When the update reached the broker (the pipeline's receive time)."
    )
    schema_version: int = SCHEMA_VERSION


class IncidentEvents(RootModel[list[Incident]]):
    """One message of the internal incident-events topic (schema_version 2): detection's
    events of one incident in one batch, in order, as incident snapshots whose
    `last_action` is the event (open, evidence, upgrade, auto_resolve).

    Why a list: a breach streak yields many events of one incident per batch; one message
    carries them instead of one Faust event each (version 1 was one snapshot a message)."""

    model_config = ConfigDict(frozen=True)


INCIDENT_EVENTS_VERSION = 2


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
    update_id: str | None = Field(
        default=None, description="The unit's update that made this transition, if any."
    )
    sent_at: UtcDatetime | None = Field(
        default=None, description="That update's own `at` (information only)."
    )
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
    original_size: int | None = Field(
        default=None,
        ge=0,
        description="Length in bytes of the whole original (of the element, for a batch "
        "element); when it exceeds what a dead letter keeps (256 KiB), `original` holds "
        "its beginning and `original_sha256` identifies it.",
    )
    original_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    element: int | None = Field(
        default=None,
        description="Index of the refused element when the record was a batch (FIWARE "
        "notification data, a SensorThings collection, a JSON array): `original` then "
        "holds that element alone, and its good neighbours went through.",
    )
    received_at: UtcDatetime
    schema_version: int = SCHEMA_VERSION

    @field_validator("original", mode="before")
    @classmethod
    def _decode_original(cls, value: Any) -> Any:
        return _b64decode(value)


class Rejection(_Event):
    """A value (never an exception) that a pure stage returns for bad input; `element` is
    the index of the batch element it concerns (None: the whole record)."""

    reason: RejectReason
    detail: str
    element: int | None = None


READING_BATCH_VERSION: Literal[2] = 2
"""schema_version of a readings-topic message: 1 was one Reading per message, 2 a batch."""

MAX_OBSERVED_AT_US = 253_402_300_800_000_000
"""Microseconds from the Unix epoch to 10000-01-01T00:00:00Z: every `observed_at_us` is
below it, so it always converts to a Python datetime (normalization bounds times far
tighter; this bound keeps a foreign writer's batch from crashing a stage)."""


class ReadingRow(NamedTuple):
    """One reading as plain values: what the hot path carries from normalization through
    detection and aggregation (a pydantic `Reading` costs microseconds to build, dump and
    validate; this costs a tuple). `to_reading()` gives the model.

    `arrived_us` is when the raw record reached the broker (its log-append time, µs since
    the epoch), or None where that is unknown (a dry run's input line without one)."""

    event_id: str
    sensor_id: str
    metric: str
    value: float
    unit: str
    observed_at_us: int
    district: str | None
    street: str | None
    grid: str | None
    community: str | None
    lat: float | None
    lon: float | None
    source_format: str
    arrived_us: int | None = None

    @property
    def areas(self) -> AdminCodes:
        """The reading's admin codes as the model."""
        return AdminCodes(
            district=self.district, street=self.street, grid=self.grid, community=self.community
        )

    def to_reading(self) -> Reading:
        """The canonical `Reading` model of this row."""
        lat, lon = self.lat, self.lon
        return Reading(
            event_id=self.event_id,
            sensor_id=self.sensor_id,
            metric=self.metric,
            value=self.value,
            unit=self.unit,
            observed_at=_EPOCH_UTC + timedelta(microseconds=self.observed_at_us),
            location=None if lat is None or lon is None else GeoPoint(lat=lat, lon=lon),
            areas=self.areas,
            source_format=self.source_format,
        )

    @classmethod
    def of(cls, reading: Reading, arrived_us: int | None = None) -> ReadingRow:
        """The row of a `Reading` model."""
        areas, at = reading.areas, reading.location
        return cls(
            reading.event_id,
            reading.sensor_id,
            reading.metric,
            reading.value,
            reading.unit,
            (reading.observed_at - _EPOCH_UTC) // _MICROSECOND,
            areas.district,
            areas.street,
            areas.grid,
            areas.community,
            None if at is None else at.lat,
            None if at is None else at.lon,
            reading.source_format,
            arrived_us,
        )


_Id = Annotated[str, Field(min_length=1, max_length=200)]
_Code = Annotated[str, Field(min_length=1, max_length=100)] | None
_Micros = Annotated[int, Field(ge=0, lt=MAX_OBSERVED_AT_US)]


class ReadingBatch(BaseModel):
    """Many readings in one message of the readings topic, as columns of equal length.

    Why columns: one Kafka message per reading made every reading a Faust event (~200 µs
    each); a batch is one event. Columns rather than an array of Reading objects: 2.4x
    fewer bytes and about 2x faster to encode and decode (measured on 1,000 sample
    readings), and each column validates in one pass.

    Reading it: `ReadingBatch.model_validate_json(value).readings()` gives the Reading
    models; in any other language, zip the columns (index i of every column is reading
    i). `observed_at_us` is integer microseconds since the Unix epoch, UTC. The origin
    columns (all empty, or one entry per reading) name the raw record each reading came
    from: `origin_sources[origin_source[i]]` is its `topic:partition`, `origin_offset[i]`
    its offset and `origin_index[i]` its position among that record's readings; a
    re-emission after a crash repeats them, so consumers may deduplicate on them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[2] = READING_BATCH_VERSION
    event_id: list[_Id]
    sensor_id: list[_Id]
    metric: list[Annotated[str, Field(min_length=1, max_length=100)]]
    value: list[float]
    unit: list[str]
    observed_at_us: list[_Micros]
    district: list[_Code]
    street: list[_Code]
    grid: list[_Code]
    community: list[_Code]
    lat: list[Annotated[float, Field(ge=-90, le=90)] | None]
    lon: list[Annotated[float, Field(ge=-180, le=180)] | None]
    source_format: list[str]
    arrived_us: list[Annotated[int, Field(ge=0)] | None] = []
    origin_sources: list[str] = []
    origin_source: list[Annotated[int, Field(ge=0)]] = []
    origin_offset: list[Annotated[int, Field(ge=0)]] = []
    origin_index: list[Annotated[int, Field(ge=0)]] = []
    progress: dict[str, Annotated[int, Field(ge=0)]] = {}
    """Raw partition (`topic:partition`) -> the newest arrival (µs) the sender had
    normalized from it when it sent this message: every reading of this key from that
    partition up to there is in this message or an earlier one. Windows use it to tell a
    silent sensor from one whose records are still on their way. A message may carry
    progress and no readings."""

    @model_validator(mode="after")
    def _equal_lengths(self) -> ReadingBatch:
        size = len(self.event_id)
        columns = (
            self.sensor_id, self.metric, self.value, self.unit, self.observed_at_us,
            self.district, self.street, self.grid, self.community, self.lat, self.lon,
            self.source_format,
        )  # fmt: skip
        if any(len(column) != size for column in columns):
            msg = "every column must hold one entry per reading"
            raise ValueError(msg)
        optional = (self.arrived_us, self.origin_source, self.origin_offset, self.origin_index)
        if any(column and len(column) != size for column in optional):
            msg = "arrived_us and the origin columns must be empty or hold one entry per reading"
            raise ValueError(msg)
        if (self.origin_source or self.origin_offset or self.origin_index) and not (
            self.origin_source and self.origin_offset and self.origin_index
        ):
            msg = "the origin columns come together"
            raise ValueError(msg)
        if any(index >= len(self.origin_sources) for index in self.origin_source):
            msg = "origin_source points past origin_sources"
            raise ValueError(msg)
        return self

    def __len__(self) -> int:
        return len(self.event_id)

    @classmethod
    def of(cls, readings: Sequence[Reading], arrived_us: Sequence[int | None] = ()) -> ReadingBatch:
        """A batch holding `readings` (no origins; arrivals if given, one per reading)."""
        rows = [ReadingRow.of(reading) for reading in readings]
        columns = {name: [getattr(row, name) for row in rows] for name in _ROW_COLUMNS}
        return cls(**columns, arrived_us=list(arrived_us))

    def rows(self) -> Iterator[ReadingRow]:
        """The batch's readings as rows, in order (the fast way to walk a batch)."""
        size = len(self.event_id)
        arrived = self.arrived_us or [None] * size
        return map(
            ReadingRow._make,
            zip(
                self.event_id, self.sensor_id, self.metric, self.value, self.unit,
                self.observed_at_us, self.district, self.street, self.grid, self.community,
                self.lat, self.lon, self.source_format, arrived, strict=True,
            ),
        )  # fmt: skip

    def readings(self) -> list[Reading]:
        """The batch as Reading models (convenient, not fast: one model per reading)."""
        return [row.to_reading() for row in self.rows()]


_ROW_COLUMNS = tuple(name for name in ReadingRow._fields if name != "arrived_us")
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
