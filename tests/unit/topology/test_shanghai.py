"""The sample topologies: every file loads; Shanghai's codes, boundaries and sensors."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely import Point
from shapely.prepared import prep

from pipeline.models import AreaLevel
from pipeline.topology import Topology, load_topology
from tests.support.paths import TOPOLOGIES

SHANGHAI_DISTRICTS = {
    "310101": "黄浦区",
    "310104": "徐汇区",
    "310105": "长宁区",
    "310106": "静安区",
    "310107": "普陀区",
    "310109": "虹口区",
    "310110": "杨浦区",
    "310112": "闵行区",
    "310113": "宝山区",
    "310114": "嘉定区",
    "310115": "浦东新区",
    "310116": "金山区",
    "310117": "松江区",
    "310118": "青浦区",
    "310120": "奉贤区",
    "310151": "崇明区",
}


@pytest.fixture(scope="module")
def shanghai() -> Topology:
    return load_topology(TOPOLOGIES / "shanghai.yaml")


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_sample_topology_loads(path: Path) -> None:
    topology = load_topology(path)
    assert topology.areas and topology.metrics and topology.rules
    assert len(topology.sla) == 4
    topology.boundary_features()


def test_the_sixteen_district_codes_exactly(shanghai: Topology) -> None:
    districts = {a.code: a.name for a in shanghai.areas_at(AreaLevel.district)}
    assert districts == SHANGHAI_DISTRICTS
    assert shanghai.city.code == "310000"
    assert all(a.parent == "310000" for a in shanghai.areas_at(AreaLevel.district))


def test_streets_of_the_central_districts(shanghai: Topology) -> None:
    streets = shanghai.areas_at(AreaLevel.street)
    by_district = {d: {s.code for s in streets if s.parent == d} for d in SHANGHAI_DISTRICTS}
    assert len(by_district["310101"]) == 10
    assert {"310104014", "310104011"} <= by_district["310104"]
    assert {"310115005", "310115125"} <= by_district["310115"]
    assert shanghai.area("310101002").name == "南京东路街道"


def test_every_district_has_one_real_boundary_and_every_street_a_synthetic_one(
    shanghai: Topology,
) -> None:
    features = shanghai.boundary_features()
    real = sorted(code for code, _ in features if code not in features.synthetic)
    assert real == sorted(SHANGHAI_DISTRICTS)
    assert features.synthetic == {a.code for a in shanghai.areas_at(AreaLevel.street)}
    assert (TOPOLOGIES / "boundaries" / "shanghai-districts.geojson").stat().st_size < 300_000


def test_people_square_is_in_huangpu_and_lujiazui_in_pudong(shanghai: Topology) -> None:
    def district(lat: float, lon: float) -> str:
        found = [c for c in shanghai.areas_containing(lat, lon) if len(c) == 6]
        assert len(found) == 1
        return found[0]

    assert district(31.2310, 121.4740) == "310101"
    assert district(31.2380, 121.5050) == "310115"
    assert district(31.1950, 121.4370) == "310104"


def test_sensor_registry_size_and_kinds(shanghai: Topology) -> None:
    assert 300 <= len(shanghai.sensors) <= 500
    kinds = {s.kind for s in shanghai.sensors}
    assert kinds == {"air", "traffic", "water_supply", "water_quality", "noise"}
    districts = {shanghai.admin_codes(s.area)[AreaLevel.district] for s in shanghai.sensors}
    assert districts == set(SHANGHAI_DISTRICTS)


def test_every_sensor_is_inside_its_district_boundary(shanghai: Topology) -> None:
    polygons = {code: prep(geom) for code, geom in shanghai.boundary_features()}
    outside = [
        s.id
        for s in shanghai.sensors
        if not polygons[shanghai.admin_codes(s.area)[AreaLevel.district]].contains(
            Point(s.lon, s.lat)
        )
    ]
    assert outside == []


def test_every_sensor_names_a_street_or_a_committee_of_it(shanghai: Topology) -> None:
    levels = {shanghai.area(s.area).level for s in shanghai.sensors}
    assert levels == {AreaLevel.street, AreaLevel.community}
    index = shanghai.grid_index()
    assert index is not None
    for sensor in shanghai.sensors:
        codes = shanghai.admin_codes(sensor.area)
        placed = index.locate(sensor.lat, sensor.lon)[1]
        assert placed is not None and placed[AreaLevel.street] == codes[AreaLevel.street]


def test_air_thresholds_follow_hj_633(shanghai: Topology) -> None:
    pm25 = shanghai.rule("pm25")
    assert pm25 is not None
    assert [lv.threshold for lv in pm25.levels] == [75, 115, 150, 250]
    ph = shanghai.rule("ph")
    assert ph is not None and (ph.levels[0].low, ph.levels[0].high) == (6, 9)


def test_report_categories_and_slas(shanghai: Topology) -> None:
    urgent = {c.id for c in shanghai.report_categories if c.urgent}
    assert {"gas_smell", "flooding"} <= urgent
    assert shanghai.sinks.store == "chdb"
