"""Open311 GeoReport v2 service requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.models import AdminCodes, GeoPoint
from tests.unit.ingest.norm_world import reasons, run

REQUEST = {
    "service_request_id": "638344",
    "status": "open",
    "status_notes": None,
    "service_name": "Gas smell",
    "service_code": "gas_smell",
    "description": "Strong gas smell in stairwell, call me on 139-0000-1234 or a@b.cn",
    "agency_responsible": "Huangpu district",
    "requested_datetime": "2026-05-01T08:00:00+08:00",
    "updated_datetime": "2026-05-01T08:05:00+08:00",
    "address": "100 Nanjing East Rd",
    "lat": 31.24,
    "long": 121.48,
}


def test_request_becomes_a_masked_urgent_report() -> None:
    result = run(REQUEST)
    assert result.format == "open311"
    [report] = result.reports
    assert report.report_id == "open311-638344"
    assert report.channel == "open311"
    assert report.category == "gas_smell"
    assert report.urgent is True
    assert report.description == (
        "Strong gas smell in stairwell, call me on 139****1234 or a***@b.cn"
    )
    assert report.location == GeoPoint(lat=31.24, lon=121.48)
    assert report.areas == AdminCodes(district="310101", street="310101002")
    assert report.reported_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def test_service_name_matches_a_category_and_string_coordinates() -> None:
    doc = {
        **REQUEST,
        "service_code": "311-017",
        "service_name": "漏水",
        "lat": "31.22",
        "long": "121.48",
    }
    [report] = run(doc).reports
    assert report.category == "water_leak"
    assert report.urgent is False
    assert report.areas == AdminCodes(district="310101")


def test_get_response_array_is_a_batch() -> None:
    result = run([REQUEST, {**REQUEST, "service_request_id": "2", "status": "pending"}])
    assert len(result.reports) == 1
    assert reasons(result) == ["schema_violation"]
    assert result.rejections[0].detail.startswith("[1] status")


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({**REQUEST, "service_code": "potholes", "service_name": "Potholes"}, "unknown_category"),
        ({**REQUEST, "requested_datetime": "2026-05-01 08:00"}, "schema_violation"),
        ({**REQUEST, "lat": 48.85, "long": 2.35}, "outside_jurisdiction"),
        ({**REQUEST, "lat": "north"}, "schema_violation"),
        ({**REQUEST, "description": "x" * 4001}, "schema_violation"),
        ({k: v for k, v in REQUEST.items() if k != "service_code"}, "schema_violation"),
    ],
)
def test_bad_requests(doc: dict[str, object], reason: str) -> None:
    assert reasons(run(doc)) == [reason]
