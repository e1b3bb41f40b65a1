"""The Topology model: the demo loads with its derived lookups."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.models import AreaLevel, Severity
from pipeline.topology import (
    load_topology,
)
from tests.support.paths import TOPOLOGIES
from tests.unit.topology.demo_edits import DEMO


def test_demo_loads_with_derived_lookups() -> None:
    topo = load_topology(DEMO)
    assert topo.id == "demo"
    assert topo.base_dir == TOPOLOGIES
    assert topo.city.code == "310000"
    assert topo.area("310101002").name_en == "Nanjing East Road"
    assert [a.code for a in topo.ancestors("310101002")] == ["310101002", "310101", "310000"]
    assert topo.admin_codes("310104014") == {
        AreaLevel.street: "310104014",
        AreaLevel.district: "310104",
        AreaLevel.city: "310000",
    }
    assert topo.admin_codes("310104") == {"district": "310104", "city": "310000"}
    sensor = topo.sensor("aq-001")
    assert sensor is not None and sensor.metrics == ("pm25", "pm10")
    assert topo.sensor("nope") is None
    with pytest.raises(KeyError):
        topo.area("999999")
    assert topo.sla[Severity.red].ack == timedelta(minutes=1)
    assert topo.aggregation.window == timedelta(minutes=1)
    assert topo.aggregation.allowed_lateness == timedelta(seconds=10)
    assert topo.boundary_features() == []
    assert topo.areas_containing(31.23, 121.48) == []
