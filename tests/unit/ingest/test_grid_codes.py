"""Every reading and report carries its grid cell when the topology has a grid."""

from __future__ import annotations

import h3
import orjson
import pytest

from pipeline.ingest.normalize import Normalizer
from pipeline.topology import Topology, load_topology
from tests.support.paths import TOPOLOGIES

AT = "2026-05-01T02:00:00Z"


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(load_topology(TOPOLOGIES / "shanghai.yaml"))


def _cell(topology: Topology, lat: float, lon: float) -> str:
    assert topology.grid is not None
    return str(h3.latlng_to_cell(lat, lon, topology.grid.resolution))


def test_a_registered_sensor_reading_carries_the_cell_where_the_sensor_stands(
    normalizer: Normalizer,
) -> None:
    topology = normalizer.topology
    committee = next(s for s in topology.sensors if len(s.area) == 12)
    doc = {"sensor_id": committee.id, "metric": committee.metrics[0], "value": 1,
           "unit": topology.metrics[committee.metrics[0]].unit, "observed_at": AT}  # fmt: skip
    (row,) = normalizer.normalize(orjson.dumps(doc)).rows
    assert row.grid == _cell(topology, committee.lat, committee.lon)
    assert (row.community, row.street, row.district) == (
        committee.area,
        committee.area[:9],
        committee.area[:6],
    )


def test_a_located_reading_and_report_are_placed_with_their_cell(normalizer: Normalizer) -> None:
    topology = normalizer.topology
    lat, lon = 31.2385, 121.4820  # Nanjing East Road (the synthetic street seeded there)
    doc = {"sensor_id": "visitor-1", "metric": "pm25", "value": 30, "unit": "ug/m3",
           "observed_at": AT, "location": {"lat": lat, "lon": lon}}  # fmt: skip
    (row,) = normalizer.normalize(orjson.dumps(doc)).rows
    assert (row.district, row.street) == ("310101", "310101002")
    assert row.grid == _cell(topology, lat, lon) and row.community is None
    report = {"report_id": "r-1", "channel": "app", "category": "water_leak",
              "reported_at": AT, "lat": lat, "lon": lon}  # fmt: skip
    (placed,) = normalizer.normalize(orjson.dumps(report)).reports
    assert placed.areas.grid == _cell(topology, lat, lon)
    assert placed.areas.street == "310101002"
