"""Routing: which incident topics an incident goes to.

Why its own module: routing is the contract with the city's handling systems (one topic
for the city, one per district and per street), apart from how an incident changes.
"""

from __future__ import annotations

from pipeline.models import Incident
from pipeline.topology import Topology


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
