"""Where an incident is: a point for its map, taken from the topology when it opens.

Why from the topology and not from the readings: a sensor's registered location is where
the unit goes (a reading's own coordinates may be absent or jitter), and an area incident
(a report cluster, an urgent report, an area rule) is about an area, whose boundary's
centroid is the honest point; a topology without boundaries gives area incidents none.
"""

from __future__ import annotations

from pipeline.models import Incident, IncidentLocation
from pipeline.topology import Topology

__all__ = ["incident_location"]


def incident_location(incident: Incident, topology: Topology) -> IncidentLocation | None:
    """The sensor's registered location, or the centroid of the lowest area of the
    incident (or an ancestor) that has a boundary; None when neither is known."""
    if incident.subject_kind == "sensor":
        sensor = topology.sensor(incident.subject)
        if sensor is not None:
            return IncidentLocation(lat=sensor.lat, lon=sensor.lon, basis="sensor")
    codes = incident.areas
    lowest = next(
        (c for c in (codes.community, codes.grid, codes.street, codes.district) if c), None
    )
    if lowest is None or not topology.has_area(lowest) or not topology.boundaries:
        return None
    shapes = dict(topology.boundary_features())
    for area in topology.ancestors(lowest):
        shape = shapes.get(str(area.code))
        if shape is not None:
            centroid = shape.centroid
            return IncidentLocation(
                lat=round(float(centroid.y), 6),
                lon=round(float(centroid.x), 6),
                basis="area_centroid",
                area=str(area.code),
            )
    return None
