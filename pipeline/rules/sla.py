"""The SLA timer: escalate an incident whose deadline passed, one level up at a time.

Why apart from :mod:`.lifecycle`: units' updates and detection events change an incident
when they arrive; escalation is driven by the pipeline's own clock (a timer tick per
incident), and is the part a city tunes (``topology.escalation``, ``topology.sla``).

- An incident overdue for ack (open or dispatched past ``ack_due``) or for resolve (not
  yet resolved past ``resolve_due``) moves its owner one level up (street -> district ->
  city), ``escalations + 1``, and both deadlines restart at the new level from the
  deadline that was missed, so it escalates again if still overdue there; never above
  ``topology.escalation.top_level``.
- Deterministic: ``now`` only decides *whether* a deadline has passed. The escalation
  takes effect at the missed deadline (or at the incident's ``updated_at`` when that is
  later), never at the timer's wall clock, so a tick repeated after a crash produces the
  same incident and audit bytes with the same version (the redelivery contract,
  docs/incidents.md).
- The deadlines themselves come from :func:`~pipeline.rules.lifecycle.sla_for`, set at
  open, reopen and upgrade.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.models import AreaLevel, Incident, IncidentAction
from pipeline.rules.lifecycle import (
    AUTO_RESOLVABLE,
    AWAITING_ACK,
    SYSTEM_ACTOR,
    Transition,
    changed,
    sla_for,
)
from pipeline.topology import Topology

__all__ = ["check_sla", "missed_deadline", "next_owner", "sla_for"]

_A = IncidentAction
_OWNER_LEVELS = (AreaLevel.street, AreaLevel.district, AreaLevel.city)
_LEVEL_RANK = {level: rank for rank, level in enumerate(AreaLevel)}  # city 0 ... community 4


def next_owner(incident: Incident, topology: Topology) -> tuple[AreaLevel, str] | None:
    """One level up from the current owner, or None at (or above) the top level."""
    top = AreaLevel(topology.escalation.top_level)
    if _LEVEL_RANK[AreaLevel(incident.owner_level)] <= _LEVEL_RANK[top]:
        return None
    try:
        ancestors = topology.ancestors(incident.owner_area)[1:]
    except (KeyError, ValueError):
        return None
    for area in ancestors:
        level = AreaLevel(area.level)
        if level in _OWNER_LEVELS and _LEVEL_RANK[level] >= _LEVEL_RANK[top]:
            return level, str(area.code)
    return None


def check_sla(incident: Incident, now: datetime, topology: Topology) -> list[Transition]:
    """Escalate an overdue incident one level up (at most one step per call).

    Returns ``[]`` when nothing is overdue, escalation is disabled, or the owner is
    already at the top level.
    """
    if not topology.escalation.enabled:
        return []
    missed = missed_deadline(incident, now)
    if missed is None:
        return []
    which, due = missed
    target = next_owner(incident, topology)
    if target is None:
        return []
    level, area = target
    at = max(due, incident.updated_at)  # the incident's time never goes back
    ack, resolve = sla_for(topology, incident.severity)
    escalated = changed(
        incident,
        at,
        _A.escalate,
        owner_level=level,
        owner_area=area,
        escalations=incident.escalations + 1,
        ack_due=at + ack,
        resolve_due=at + resolve,
    )
    reason = (
        f"{which} overdue since {due.isoformat()}; "
        f"{incident.owner_level} {incident.owner_area} -> {level} {area}"
    )
    return [
        Transition(escalated, _A.escalate, SYSTEM_ACTOR, at, incident.state, incident.state, reason)
    ]


def missed_deadline(incident: Incident, now: datetime) -> tuple[str, datetime] | None:
    """The deadline ``incident`` has missed by ``now`` (``"ack"`` or ``"resolve"``, and
    when it was due), or None."""
    ack_due, resolve_due = incident.ack_due, incident.resolve_due
    if incident.state in AWAITING_ACK and ack_due is not None and now > ack_due:
        return "ack", ack_due
    if incident.state in AUTO_RESOLVABLE and resolve_due is not None and now > resolve_due:
        return "resolve", resolve_due
    return None
