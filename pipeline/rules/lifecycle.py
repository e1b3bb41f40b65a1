"""The incident lifecycle: a pure state machine over incidents (SLA timer: :mod:`.sla`).

Why pure: the lifecycle worker keys its table by incident id, loads the current
:class:`~pipeline.models.Incident`, calls :func:`apply` (an update from a handling unit),
:func:`apply_detection` (an event from detection) or :func:`~pipeline.rules.sla.check_sla`
(a timer tick), and stores / produces what comes back. A :class:`Transition` carries
everything the audit trail needs; a :class:`~pipeline.models.Rejection` is a value, never
an exception. Every rule family opens its incidents through :func:`new_incident` with an
id from :func:`incident_id`. docs/incidents.md is generated from :data:`TRANSITIONS`,
:data:`ACTION_MEANINGS` and the models.

States and actions (``from -> to``)::

    dispatch      open -> dispatched
    acknowledge   open | dispatched -> acknowledged
    resolve       acknowledged -> resolved            (a unit must acknowledge first)
    close         resolved -> closed
    reopen        resolved -> open; closed -> open only within incidents.reopen_window
    comment       any state but closed -> same state
    auto_resolve  (detection) open | dispatched | acknowledged -> resolved
    escalate      (check_sla) same state, owner one level up
    evidence      (detection) same state, evidence updated
    upgrade       (detection) same state, higher severity, deadlines tightened;
                  resolved | closed -> open (a system reopen: the incident worsened)

Choices:
- Time: a unit's update takes effect at the pipeline's receive time (the update record's
  log-append time), never at the sender's ``at``, which is kept in the audit as
  information; detection's changes take effect at their event time.
- Closed is final except for a reopen within ``incidents.reopen_window`` of the close,
  measured from ``updated_at`` (nothing else may change a closed incident, so that is the
  close time). A reopen starts new SLA deadlines from the reopen time.
- A worsening incident that a unit resolved (or closed) reopens: detection's upgrade to a
  higher severity puts it back to ``open`` (``reopen`` by ``system``) with the new
  severity and new deadlines, so it is counted as open again and the units see it. New
  evidence at the same severity is kept (resolved) or ignored (closed): a unit that
  resolved by hand while readings were still clearing is not pulled back for that. The
  incident keeps its id: one problem, one trail, one record per id on the topics.
- SLA deadlines are set at open from ``topology.sla[severity]`` (:func:`sla_for`; it lives
  here because open, reopen and upgrade set deadlines, and :mod:`.sla` builds on this
  module). On upgrade they are tightened, never relaxed: ``min(current, upgrade time + new
  severity's SLA)``.
- Authority: the acting unit's area (``unit`` is an area code, optionally followed by
  ``/`` and a unit name, e.g. ``310101/urban-management``) must be the incident's own
  (lowest) area or one of its ancestors. A parent is accountable for everything in its
  area (escalation climbs to it), so it may act; a sibling has no jurisdiction there, so
  it may not. Escalation does not take authority away from the street, it adds the
  district's ownership.
- Every accepted change bumps ``version`` and sets ``updated_at``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.models import (
    AdminCodes,
    AreaLevel,
    Evidence,
    Incident,
    IncidentAction,
    IncidentKind,
    IncidentState,
    IncidentUpdate,
    Rejection,
    RejectReason,
    Severity,
    UnitAction,
)
from pipeline.rules.locations import incident_location
from pipeline.topology import Topology

SYSTEM_ACTOR = "system"

#: Evidence keeps the first this many event ids (the ones that opened the incident and the
#: earliest after); ``evidence.count`` still counts every breaching sample or report.
MAX_EVENT_IDS = 32

_S = IncidentState
_A = IncidentAction

#: Unit actions: action -> {from_state: to_state}.
TRANSITIONS: dict[IncidentAction, dict[IncidentState, IncidentState]] = {
    _A.dispatch: {_S.open: _S.dispatched},
    _A.acknowledge: {_S.open: _S.acknowledged, _S.dispatched: _S.acknowledged},
    _A.resolve: {_S.acknowledged: _S.resolved},
    _A.close: {_S.resolved: _S.closed},
    _A.reopen: {_S.resolved: _S.open, _S.closed: _S.open},
    _A.comment: {s: s for s in (_S.open, _S.dispatched, _S.acknowledged, _S.resolved)},
}
#: What each action means, for the contract (docs/incidents.md is generated from it).
ACTION_MEANINGS: dict[IncidentAction, str] = {
    _A.open: "detection opened the incident",
    _A.evidence: "detection saw more of it (same severity)",
    _A.upgrade: "detection saw it worsen to a higher severity",
    _A.auto_resolve: "detection saw the value clear (the clear threshold)",
    _A.escalate: "the SLA timer moved the owner one level up (a deadline passed)",
    _A.dispatch: "the unit sent someone",
    _A.acknowledge: "the unit took it on",
    _A.resolve: "the unit fixed it",
    _A.close: "the unit closed it after a resolve",
    _A.reopen: "a unit (or the system, when it worsened after a resolve) reopened it",
    _A.comment: "the unit added a note; nothing else changes",
}
#: Why the pipeline may refuse a unit's update: the reasons a reply can carry, in the
#: order they are checked.
REFUSALS: dict[RejectReason, str] = {
    RejectReason.invalid_json: "the record is not JSON",
    RejectReason.schema_violation: "the record is not a valid update (see its JSON Schema)",
    RejectReason.unknown_unit: "`unit` is not listed in the topology's unit keys file",
    RejectReason.unsigned: "the record has no `cityops-signature` header",
    RejectReason.bad_signature: "the signature does not verify with the unit's public key",
    RejectReason.clock_skew: "`at` is later than the receive time plus event_time.max_clock_skew",
    RejectReason.too_old: "`at` is older than the receive time minus incidents.max_update_age",
    RejectReason.unknown_incident: "no incident with that id in this deployment",
    RejectReason.duplicate: "an update with this `update_id` was already received",
    RejectReason.unit_outside_area: "the unit's area is not the incident's area or an ancestor",
    RejectReason.invalid_transition: "the action is not allowed from the incident's state",
}
#: States an automatic clear (or an overdue resolve) applies to.
AUTO_RESOLVABLE = (_S.open, _S.dispatched, _S.acknowledged)
#: States still waiting for a unit's acknowledgement.
AWAITING_ACK = (_S.open, _S.dispatched)


def incident_id(*parts: str) -> str:
    """A deterministic incident id: ``inc-`` + 16 hex digits of blake2b over the parts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8)
    return "inc-" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """What detection emits: an action (open, evidence, upgrade, auto_resolve) and the
    incident as detection sees it (its severity and evidence are authoritative; its
    lifecycle fields are only meaningful for ``open``).

    ``incident.last_action`` always equals ``action``, so the worker can ship
    ``event.incident`` (a plain :class:`~pipeline.models.Incident`) to the lifecycle agent,
    keyed by incident id, and rebuild the event there with :meth:`from_incident`. It is
    not for the public incident topics: only :func:`apply_detection`'s result is.
    """

    action: IncidentAction
    incident: Incident

    @classmethod
    def from_incident(cls, incident: Incident) -> IncidentEvent:
        """The event a detector snapshot stands for (its ``last_action``)."""
        return cls(action=incident.last_action, incident=incident)


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted change: the new incident and what the audit trail records about it."""

    incident: Incident
    action: IncidentAction
    actor: str
    at: datetime
    from_state: IncidentState | None
    to_state: IncidentState
    reason: str | None = None
    update_id: str | None = None
    sent_at: datetime | None = None


def _reject(reason: RejectReason, detail: str) -> Rejection:
    return Rejection(reason=reason, detail=detail)


# --------------------------------------------------------------------------- open


def sla_for(topology: Topology, severity: Severity) -> tuple[timedelta, timedelta]:
    """(ack, resolve) durations of a severity from the topology."""
    entry = topology.sla[severity]
    return entry.ack, entry.resolve


def initial_owner(areas: AdminCodes, topology: Topology) -> tuple[AreaLevel, str]:
    """The lowest of street / district / city the incident has an area code for."""
    if areas.street:
        return AreaLevel.street, areas.street
    if areas.district:
        return AreaLevel.district, areas.district
    return AreaLevel.city, city_code(topology)


def city_code(topology: Topology) -> str:
    """The code of the topology's (single) city-level area."""
    return topology.city.code


def new_incident(
    *,
    incident_id: str,
    rule_id: str,
    kind: IncidentKind,
    severity: Severity,
    subject: str,
    subject_kind: str,
    metric: str | None,
    category: str | None,
    evidence: Evidence,
    areas: AdminCodes,
    opened_at: datetime,
    topology: Topology,
) -> Incident:
    """A freshly opened incident: owner at its lowest level, SLA deadlines from open."""
    owner_level, owner_area = initial_owner(areas, topology)
    ack, resolve = sla_for(topology, severity)
    return Incident(
        incident_id=incident_id,
        rule_id=rule_id,
        kind=kind,
        severity=severity,
        subject=subject,
        subject_kind=subject_kind,
        metric=metric,
        category=category,
        evidence=evidence,
        owner_level=owner_level,
        owner_area=owner_area,
        areas=areas,
        state=IncidentState.open,
        opened_at=opened_at,
        updated_at=opened_at,
        ack_due=opened_at + ack,
        resolve_due=opened_at + resolve,
        escalations=0,
        version=1,
    )


def changed(incident: Incident, at: datetime, action: IncidentAction, **update: Any) -> Incident:
    """``incident`` after an accepted ``action`` at ``at``: version bumped, time moved on."""
    update["version"] = incident.version + 1
    update["updated_at"] = max(incident.updated_at, at)
    update["last_action"] = action
    return incident.model_copy(update=update)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None else min(current, candidate)


# --------------------------------------------------------------------------- unit updates


def lowest_area(incident: Incident, topology: Topology) -> str:
    """The incident's own area: its lowest admin code (the city's code if it has none)."""
    codes = incident.areas
    for code in (codes.community, codes.grid, codes.street, codes.district):
        if code:
            return code
    return city_code(topology)


def unit_area(unit: str) -> str:
    """The area code of an acting unit id (``<area code>`` or ``<area code>/<name>``)."""
    return unit.split("/", 1)[0]


def may_act(unit: str, incident: Incident, topology: Topology) -> bool:
    """Whether ``unit`` has authority over ``incident`` (its area or an ancestor's)."""
    try:
        ancestors = topology.ancestors(lowest_area(incident, topology))
    except (KeyError, ValueError):
        return False
    return unit_area(unit) in {str(area.code) for area in ancestors}


def apply(
    incident: Incident,
    update: IncidentUpdate,
    topology: Topology,
    *,
    received_at: datetime | None = None,
) -> Transition | Rejection:
    """Apply a handling unit's update to the current incident, at ``received_at`` (the
    pipeline's receive time; None only where there is none, as on a dry run's line
    without a timestamp: the update's own ``at`` stands in).

    The update is already authenticated (:mod:`.units`). An update for an incident the
    caller does not know is ``unknown_incident``: the caller rejects it before calling.
    """
    at = update.at if received_at is None else received_at
    if update.incident_id != incident.incident_id:
        msg = f"update for {update.incident_id} applied to {incident.incident_id}"
        return _reject(RejectReason.unknown_incident, msg)
    action = IncidentAction(update.action)
    table = TRANSITIONS.get(action) if update.action in UnitAction else None
    if table is None:
        msg = f"{update.action} is not a unit action"
        return _reject(RejectReason.invalid_transition, msg)
    if not may_act(update.unit, incident, topology):
        msg = f"unit {update.unit} has no authority over area {lowest_area(incident, topology)}"
        return _reject(RejectReason.unit_outside_area, msg)
    target = table.get(incident.state)
    if target is None:
        msg = f"cannot {update.action} an incident that is {incident.state}"
        return _reject(RejectReason.invalid_transition, msg)
    changes: dict[str, Any] = {"state": target}
    if action == _A.reopen:
        closed_for = at - incident.updated_at
        if incident.state == _S.closed and closed_for > topology.incidents.reopen_window:
            msg = f"closed at {incident.updated_at.isoformat()}, beyond the reopen window"
            return _reject(RejectReason.invalid_transition, msg)
        ack, resolve = sla_for(topology, incident.severity)
        changes.update(ack_due=at + ack, resolve_due=at + resolve, reopened=incident.reopened + 1)
    return Transition(
        incident=changed(incident, at, action, **changes),
        action=action,
        actor=update.unit,
        at=at,
        from_state=incident.state,
        to_state=target,
        reason=update.note,
        update_id=update.update_id,
        sent_at=update.at,
    )


# --------------------------------------------------------------------------- detection


def apply_detection(
    incident: Incident | None, event: IncidentEvent, topology: Topology
) -> Transition | Rejection | None:
    """Merge a detection event into the lifecycle's incident (``None`` if not yet known).

    Idempotent under replay: a second ``open`` of a known id, or evidence that is not newer
    than what the incident already has, is a ``duplicate`` rejection the caller may drop.
    None: the event changes nothing the lifecycle keeps (an automatic clear of an incident
    a unit already resolved, same-severity evidence for a closed one).
    """
    seen = event.incident
    at = seen.updated_at
    if event.action == _A.open:
        if incident is not None:
            msg = f"{seen.incident_id} is already open"
            return _reject(RejectReason.duplicate, msg)
        if seen.location is None:
            seen = seen.model_copy(update={"location": incident_location(seen, topology)})
        return Transition(seen, _A.open, SYSTEM_ACTOR, at, None, seen.state)
    if incident is None:
        msg = f"{event.action} for unknown incident {seen.incident_id}"
        return _reject(RejectReason.unknown_incident, msg)
    if event.action == _A.auto_resolve:
        if incident.state not in AUTO_RESOLVABLE:
            return None  # a unit resolved it first: nothing left to clear
        return Transition(
            changed(incident, at, _A.auto_resolve, state=_S.resolved),
            _A.auto_resolve,
            SYSTEM_ACTOR,
            at,
            incident.state,
            _S.resolved,
            "value crossed the clear threshold",
        )
    if event.action not in (_A.evidence, _A.upgrade):
        msg = f"{event.action} is not a detection action"
        return _reject(RejectReason.invalid_transition, msg)
    if seen.evidence.count <= incident.evidence.count:
        msg = f"evidence count {seen.evidence.count} is not newer than {incident.evidence.count}"
        return _reject(RejectReason.duplicate, msg)
    worse = seen.severity.rank > incident.severity.rank
    if incident.state in (_S.resolved, _S.closed) and worse:
        return _reopen_worse(incident, seen, topology)
    if incident.state == _S.closed:
        return None  # closed is final for evidence at the severity the unit closed
    return _merge_evidence(incident, seen, topology)


def _merge_evidence(incident: Incident, seen: Incident, topology: Topology) -> Transition:
    """Newer evidence from detection: the same state, an upgrade if the severity rose."""
    at = seen.updated_at
    changes: dict[str, Any] = {"evidence": seen.evidence}
    action = _A.evidence
    reason = None
    if seen.severity.rank > incident.severity.rank:
        action = _A.upgrade
        reason = f"{incident.severity} -> {seen.severity}"
        ack, resolve = sla_for(topology, seen.severity)
        changes.update(
            severity=seen.severity,
            ack_due=_earliest(incident.ack_due, at + ack),
            resolve_due=_earliest(incident.resolve_due, at + resolve),
        )
    return Transition(
        changed(incident, at, action, **changes),
        action,
        SYSTEM_ACTOR,
        at,
        incident.state,
        incident.state,
        reason,
    )


def _reopen_worse(incident: Incident, seen: Incident, topology: Topology) -> Transition:
    """A resolved or closed incident worsened: open again, at the new severity, with new
    deadlines from now (a system reopen)."""
    at = seen.updated_at
    ack, resolve = sla_for(topology, seen.severity)
    reopened = changed(
        incident,
        at,
        _A.reopen,
        state=_S.open,
        severity=seen.severity,
        evidence=seen.evidence,
        ack_due=at + ack,
        resolve_due=at + resolve,
        reopened=incident.reopened + 1,
    )
    reason = f"worsened after it was {incident.state}: {incident.severity} -> {seen.severity}"
    return Transition(reopened, _A.reopen, SYSTEM_ACTOR, at, incident.state, _S.open, reason)
