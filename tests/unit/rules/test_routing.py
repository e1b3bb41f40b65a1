"""Routing: the incident topics of the city, the district and the street."""

from __future__ import annotations

from pipeline.models import AdminCodes
from pipeline.rules.routing import route
from tests.unit.rules.detect_world import HUANGPU, NANJING_EAST, XUHUI
from tests.unit.rules.incident_world import TOPO, make


def test_route_to_city_district_and_street_topics() -> None:
    assert route(make(), TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{HUANGPU}",
        f"cityops.test.incidents.street.{NANJING_EAST}",
    ]
    assert route(make(areas=AdminCodes(district=XUHUI)), TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{XUHUI}",
    ]
    assert route(make(areas=AdminCodes()), TOPO) == ["cityops.test.incidents.city"]
    unknown = make(areas=AdminCodes(district=HUANGPU, street="310101999"))
    assert route(unknown, TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{HUANGPU}",
    ]
