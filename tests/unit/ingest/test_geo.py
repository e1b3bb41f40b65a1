"""AreaResolver: smallest containing area plus ancestors, None outside."""

from __future__ import annotations

from pipeline.ingest.geo import AreaResolver
from pipeline.models import AreaLevel
from pipeline.topology import load_topology
from tests.support.paths import DEMO
from tests.unit.ingest.norm_world import city


def test_street_polygon_wins_over_its_district() -> None:
    geo = AreaResolver(city())
    assert len(geo) == 3
    assert geo.resolve(31.24, 121.48) == {
        AreaLevel.street: "310101002",
        AreaLevel.district: "310101",
        AreaLevel.city: "310000",
    }


def test_district_only_where_no_street_polygon() -> None:
    geo = AreaResolver(city())
    assert geo.resolve(31.22, 121.48) == {AreaLevel.district: "310101", AreaLevel.city: "310000"}
    assert geo.smallest(31.19, 121.44) == "310104"


def test_outside_every_area_is_none() -> None:
    geo = AreaResolver(city())
    assert geo.resolve(0.0, 0.0) is None
    assert geo.resolve(31.30, 121.48) is None  # north of every polygon
    assert geo.resolve(31.19, 121.465) is None  # the gap between the two districts


def test_point_on_a_boundary_is_inside() -> None:
    geo = AreaResolver(city())
    assert geo.smallest(31.21, 121.47) == "310101"  # corner of Huangpu's polygon


def test_topology_without_boundaries_resolves_nothing() -> None:
    demo = load_topology(DEMO)
    geo = AreaResolver(demo)
    assert len(geo) == 0
    assert geo.resolve(31.2385, 121.482) is None
