"""The SLA timer: escalate an incident whose deadline passed, one level up at a time.

Why apart from :mod:`.lifecycle`: units' updates and detection events change an incident
when they arrive; escalation is driven by the pipeline's own clock (a timer tick per
incident), and is the part a city tunes (``topology.escalation``, ``topology.sla``).

- An incident overdue for ack (open or dispatched past ``ack_due``) or for resolve (not
  yet resolved past ``resolve_due``) moves its owner one level up (street -> district ->
  city), ``escalations + 1``, and both deadlines restart from ``now`` at the new level, so
  it escalates again if still overdue there; never above ``topology.escalation.top_level``.
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

__all__ = ["check_sla", "next_owner", "sla_for"]

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
    overdue: str | None = None
    ack_due, resolve_due = incident.ack_due, incident.resolve_due
    if incident.state in AWAITING_ACK and ack_due is not None and now > ack_due:
        overdue = f"ack overdue since {ack_due.isoformat()}"
    elif incident.state in AUTO_RESOLVABLE and resolve_due is not None and now > resolve_due:
        overdue = f"resolve overdue since {resolve_due.isoformat()}"
    if overdue is None:
        return []
    target = next_owner(incident, topology)
    if target is None:
        return []
    level, area = target
    ack, resolve = sla_for(topology, incident.severity)
    escalated = changed(
        incident,
        now,
        _A.escalate,
        owner_level=level,
        owner_area=area,
        escalations=incident.escalations + 1,
        ack_due=now + ack,
        resolve_due=now + resolve,
    )
    reason = f"{overdue}; {incident.owner_level} {incident.owner_area} -> {level} {area}"
    return [
        Transition(
            escalated, _A.escalate, SYSTEM_ACTOR, now, incident.state, incident.state, reason
        )
    ]
