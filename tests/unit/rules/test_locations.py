"""Incidents carry the location of their evidence: the sensor's, or an area's centroid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pipeline.models import AdminCodes, IncidentLocation
from pipeline.rules.locations import incident_location
from pipeline.topology import parse_topology
from tests.unit.rules.detect_world import BASE, HUANGPU, WAITAN, XUHUI
from tests.unit.rules.incident_world import TOPO, make

SQUARE = {"type": "Polygon", "coordinates": [[[121.4, 31.2], [121.5, 31.2], [121.5, 31.3],
                                              [121.4, 31.3], [121.4, 31.2]]]}  # fmt: skip


def test_a_sensor_incident_is_at_the_sensors_registered_location() -> None:
    assert incident_location(make(), TOPO) == IncidentLocation(
        lat=31.2365, lon=121.4790, basis="sensor"
    )


def test_an_area_incident_is_at_the_centroid_of_its_lowest_bounded_area(tmp_path: Path) -> None:
    features = [{"type": "Feature", "properties": {"code": HUANGPU}, "geometry": SQUARE}]
    (tmp_path / "b.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    topology = parse_topology({**copy.deepcopy(BASE), "boundaries": "b.geojson"}, tmp_path)
    report = make(areas=AdminCodes(district=HUANGPU, street=WAITAN)).model_copy(
        update={"subject_kind": "area", "subject": "rpt-1"}
    )  # the street has no boundary: its district's centroid
    assert incident_location(report, topology) == IncidentLocation(
        lat=31.25, lon=121.45, basis="area_centroid", area=HUANGPU
    )
    elsewhere = report.model_copy(update={"areas": AdminCodes(district=XUHUI)})
    assert incident_location(elsewhere, topology) is None  # no boundary up its chain
    assert incident_location(report, TOPO) is None  # a topology without boundaries
