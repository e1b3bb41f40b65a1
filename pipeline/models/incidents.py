"""Incidents and what happens to them: the incident record, units' updates and the
pipeline's replies, detection's incident events, and the hash-chained audit trail.

Why together: these are the contract with the city's handling units (the incident,
updates, replies and audit topics), versioned as one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, RootModel

from pipeline.models.base import (
    SCHEMA_VERSION,
    AdminCodes,
    Finite,
    PlausibleTime,
    UtcDatetime,
    _Event,
)
from pipeline.models.enums import (
    AreaLevel,
    IncidentAction,
    IncidentKind,
    IncidentState,
    RejectReason,
    Severity,
    UnitAction,
)

__all__ = [
    "INCIDENT_EVENTS_VERSION",
    "MAX_EVIDENCE_IDS",
    "AuditEvent",
    "Evidence",
    "Incident",
    "IncidentEvents",
    "IncidentLocation",
    "IncidentUpdate",
    "UpdateReply",
]


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
