"""Without boundaries, located reports are the city's, not `outside_jurisdiction` (issue 15)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import yaml

from pipeline.ingest.normalize import Normalizer
from pipeline.models import AdminCodes, CitizenReport, GeoPoint
from pipeline.topology import parse_topology
from tests.support.paths import DEMO

BASE: dict[str, Any] = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
OPEN311 = {
    "service_request_id": "638344",
    "status": "open",
    "service_code": "gas_smell",
    "requested_datetime": "2026-05-01T08:00:00+08:00",
    "lat": "31.2304",
    "long": "121.4737",
}


def normalizer() -> Normalizer:
    data = copy.deepcopy(BASE)
    data.pop("boundaries", None)
    topology = parse_topology(data, DEMO.parent)
    assert topology.boundary_features() == []
    return Normalizer(topology)


def test_a_located_open311_report_is_accepted_into_the_city() -> None:
    result = normalizer().normalize(orjson.dumps(OPEN311))
    assert result.rejections == []
    [report] = result.items
    assert isinstance(report, CitizenReport)
    assert report.category == "gas_smell"
    assert report.location == GeoPoint(lat=31.2304, lon=121.4737)
    assert report.areas == AdminCodes()


def test_a_named_area_still_places_a_canonical_report() -> None:
    doc = {"report_id": "r-1", "category": "gas_smell", "reported_at": "2026-05-01T00:00:00Z",
           "location": {"lat": 31.23, "lon": 121.47}, "area": "310101"}  # fmt: skip
    result = normalizer().normalize(orjson.dumps(doc))
    assert result.rejections == []
    assert result.items[0].areas.district == "310101"
