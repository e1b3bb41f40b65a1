"""Routing: which incident topics an incident goes to, and which changes go there at all.

Why its own module: routing is the contract with the city's handling systems (one topic
for the city, one per district and per street), apart from how an incident changes.

Quiet topics: a unit acts on an incident that opened, changed severity, changed owner
(escalation) or changed state; evidence alone (another breaching reading) changes none of
that. So the incident topics carry every change except evidence-only ones, and those at
most once per ``incidents.evidence_interval`` of event time per incident. Every change
still goes to the audit topic, and detection's events stay on the events topic.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.models import Incident, IncidentAction
from pipeline.topology import Topology

__all__ = ["publishes", "reply_topic", "route"]


def route(incident: Incident, topology: Topology) -> list[str]:
    """Topics an incident goes to: the city's, its district's and its street's (when the
    topology knows those areas). Escalation does not change the list: ``owner_level`` in
    the payload tells consumers who owns it now."""
    topics = [topology.topics.name("incidents_city")]
    district, street = incident.areas.district, incident.areas.street
    if district and topology.has_area(district):
        topics.append(topology.topics.name("incidents_district", district))
    if street and topology.has_area(street):
        topics.append(topology.topics.name("incidents_street", street))
    return topics


def publishes(
    action: IncidentAction, at: datetime, last_published: datetime | None, topology: Topology
) -> bool:
    """Whether a change goes to the incident topics: anything but evidence at once;
    evidence when ``incidents.evidence_interval`` has passed since the incident's last
    published record (``last_published``; None: never published)."""
    if action != IncidentAction.evidence:
        return True
    if last_published is None:
        return True
    return at - last_published >= topology.incidents.evidence_interval


def reply_topic(topology: Topology) -> str:
    """Where the pipeline answers units' updates (keyed by incident id)."""
    return topology.topics.name("incident_replies")
