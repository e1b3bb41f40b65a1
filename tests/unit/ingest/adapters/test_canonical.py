"""Canonical JSON input: round trip of our own models, top-level lat/lon, reports."""

from __future__ import annotations

import orjson

from pipeline.models import GeoPoint
from tests.unit.ingest.norm_world import reasons, run


def test_a_normalized_reading_can_be_fed_back_in() -> None:
    first = run(
        {
            "sensor_id": "aq-001",
            "metric": "pm10",
            "value": 120,
            "observed_at": "2026-05-01T00:00:00Z",
        }
    ).readings[0]
    again = run(orjson.loads(first.model_dump_json())).readings[0]
    assert again == first


def test_top_level_lat_lon_for_an_unregistered_sensor() -> None:
    [reading] = run(
        {
            "sensor_id": "van-3",
            "metric": "pm25",
            "value": 12.5,
            "lat": 31.19,
            "lon": 121.44,
            "observed_at": "2026-05-01T00:00:00Z",
        }
    ).readings
    assert reading.location == GeoPoint(lat=31.19, lon=121.44)
    assert reading.areas.district == "310104"


def test_report_fields_are_checked() -> None:
    base = {"report_id": "r9", "category": "water_leak", "reported_at": "2026-05-01T00:00:00Z"}
    assert reasons(run({**base, "urgent": "yes"})) == ["schema_violation"]
    assert reasons(run({**base, "description": 5})) == ["schema_violation"]
    [report] = run({**base, "urgent": True, "description": None}).reports
    assert report.urgent is True
    assert report.description == ""
