"""FIWARE NGSI v2 / NGSI-LD, normalized and keyValues, four data models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters.registry import detect_format, format_from_headers
from pipeline.ingest.normalize import Unmapped
from pipeline.models import AdminCodes
from tests.unit.ingest.norm_world import reasons, run

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)

V2_NORMALIZED = {
    "id": "urn:ngsi:AirQualityObserved:aq-001",
    "type": "AirQualityObserved",
    "dateObserved": {"type": "DateTime", "value": "2026-05-01T08:00:00+08:00"},
    "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [121.48, 31.24]}},
    "pm25": {"type": "Number", "value": 82, "metadata": {"unitCode": {"value": "GQ"}}},
    "pm10": {"type": "Number", "value": 0.12, "metadata": {"unitCode": {"value": "GP"}}},
    "CO": {"type": "Number", "value": 900, "metadata": {"unitCode": {"value": "GQ"}}},
    "airQualityIndex": {"type": "Number", "value": 110},
    "airQualityLevel": {"type": "Text", "value": "moderate"},
    "temperature": {"type": "Number", "value": 21.5},
    "relativeHumidity": {"type": "Number", "value": 0.64},
}

LD_NORMALIZED = {
    "id": "urn:ngsi-ld:NoiseLevelObserved:nl-1",
    "type": "NoiseLevelObserved",
    "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
    "dateObservedFrom": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2026-04-30T23:55:00Z"},
    },
    "dateObservedTo": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2026-05-01T00:00:00Z"},
    },
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [121.49, 31.232]},
    },
    "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:noise-001"},
    "LAeq": {"type": "Property", "value": 67.8},
    "LAmax": {"type": "Property", "value": 88.1},
}


def test_v2_normalized_air_quality_gives_one_reading_per_catalogue_metric() -> None:
    result = run(V2_NORMALIZED)
    assert result.format == "ngsi-v2"
    assert result.rejections == []
    got = {r.metric: r.value for r in result.readings}
    assert got == pytest.approx(
        {"pm25": 82.0, "pm10": 120.0, "co": 0.9, "air_temperature": 21.5, "humidity": 64.0}
    )
    assert result.skipped == 1  # airQualityIndex: no 'aqi' in this catalogue
    first = result.readings[0]
    assert first.sensor_id == "aq-001"  # URN's last segment is the registered id
    assert first.observed_at == T0
    assert first.areas == AdminCodes(district="310101", street="310101002")
    assert {r.source_format for r in result.readings} == {"ngsi-v2"}
    assert len({r.event_id for r in result.readings}) == 5


def test_v2_key_values_uses_catalogue_units_and_model_conventions() -> None:
    doc = {
        "id": "aq-001",
        "type": "AirQualityObserved",
        "dateObserved": "2026-05-01T00:00:00Z",
        "pm25": 35,
        "no2": 40,
        "relativeHumidity": 0.5,
        "temperature": 20,
    }
    result = run(doc)
    assert result.format == "ngsi-v2"
    got = {r.metric: r.value for r in result.readings}
    assert got == pytest.approx(
        {"pm25": 35.0, "no2": 40.0, "humidity": 50.0, "air_temperature": 20.0}
    )


def test_ld_normalized_noise_uses_ref_device_and_end_of_interval() -> None:
    result = run(LD_NORMALIZED)
    assert result.format == "ngsi-ld"
    [reading] = result.readings  # LAmax not registered for noise-001 -> skipped
    assert reading.sensor_id == "noise-001"
    assert reading.metric == "noise_laeq"
    assert reading.value == 67.8
    assert reading.unit == "dB(A)"
    assert reading.observed_at == T0
    assert result.skipped == 1


def test_ld_key_values_traffic_with_interval_and_line_string() -> None:
    doc = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-001",
        "type": "TrafficFlowObserved",
        "dateObserved": "2026-04-30T23:45:00Z/2026-05-01T00:00:00Z",
        "location": {
            "type": "LineString",
            "coordinates": [[121.43, 31.18], [121.44, 31.19], [121.45, 31.20]],
        },
        "intensity": 1200,
        "occupancy": 0.35,
        "averageVehicleSpeed": 42.5,
        "congested": False,
        "laneId": 1,
    }
    result = run(doc)
    assert result.format == "ngsi-ld"
    got = {r.metric: r.value for r in result.readings}
    assert got == pytest.approx(
        {"traffic_intensity": 1200.0, "occupancy": 35.0, "traffic_speed": 42.5}
    )
    assert {r.observed_at for r in result.readings} == {T0}


def test_water_quality_maps_nh4_and_measurands() -> None:
    doc = {
        "id": "urn:ngsi-ld:WaterQualityObserved:wq-001",
        "type": "WaterQualityObserved",
        "@context": "https://smartdatamodels.org/context.jsonld",
        "dateObserved": {"type": "Property", "value": "2026-05-01T00:00:00Z"},
        "pH": {"type": "Property", "value": 7.4},
        "NH4": {"type": "Property", "value": 420, "unitCode": "GQ"},
        "temperature": {"type": "Property", "value": 18.0, "unitCode": "CEL"},
        "measurand": {"type": "Property", "value": ["O2, 6.8, M1, dissolved oxygen"]},
    }
    result = run(doc)
    got = {r.metric: r.value for r in result.readings}
    assert reasons(result) == ["unit_not_convertible"]  # NH4 in ug/m3 is not a water unit
    assert got == pytest.approx({"ph": 7.4, "water_temperature": 18.0, "dissolved_oxygen": 6.8})


def test_per_attribute_observed_at_overrides_the_entity_time() -> None:
    doc = dict(LD_NORMALIZED)
    doc["LAeq"] = {"type": "Property", "value": 60.0, "observedAt": "2026-05-01T01:00:00Z"}
    [reading] = run(doc).readings
    assert reading.observed_at == datetime(2026, 5, 1, 1, 0, tzinfo=UTC)


def test_notification_envelope_is_unwrapped() -> None:
    doc = {"subscriptionId": "57458eb60962ef754e7c0998", "data": [V2_NORMALIZED, LD_NORMALIZED]}
    result = run(doc)
    assert result.format == "ngsi-v2"
    assert len(result.readings) == 6


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({**V2_NORMALIZED, "dateObserved": None}, "schema_violation"),
        (
            {"id": "aq-001", "type": "AirQualityObserved", "dateObserved": "2026-05-01T00:00:00Z"},
            "schema_violation",
        ),  # no measurement at all
        (
            {
                "id": "aq-001",
                "type": "AirQualityObserved",
                "dateObserved": "2026-05-01T00:00:00Z",
                "reliability": 0.9,
                "airQualityIndex": 50,
            },
            "unknown_metric",
        ),
        (
            {**V2_NORMALIZED, "location": {"type": "geo:json", "value": {"type": "Point"}}},
            "schema_violation",
        ),
        (
            {
                "id": "ghost",
                "type": "AirQualityObserved",
                "dateObserved": "2026-05-01T00:00:00Z",
                "pm25": 3,
            },
            "unknown_sensor",
        ),
        (
            {
                **V2_NORMALIZED,
                "pm25": {"type": "Number", "value": 82, "metadata": {"unitCode": {"value": "XYZ"}}},
            },
            "unit_not_convertible",
        ),
    ],
)
def test_bad_entities_are_rejected_with_a_reason(doc: dict[str, object], reason: str) -> None:
    assert reason in reasons(run(doc))


def test_detection_and_headers() -> None:
    assert detect_format(V2_NORMALIZED) == "ngsi-v2"
    assert detect_format(LD_NORMALIZED) == "ngsi-ld"
    assert detect_format([LD_NORMALIZED]) == "ngsi-ld"
    assert format_from_headers([("content-type", b"application/ld+json")]) == "ngsi-ld"
    assert format_from_headers({"cityops-format": "NGSI-v2"}) == "ngsi-v2"
    assert format_from_headers([("other", b"x")]) is None
    forced = run(LD_NORMALIZED, headers=[("cityops-format", b"ngsi-v2")])
    assert forced.format == "ngsi-v2"
    assert forced.readings[0].source_format == "ngsi-v2"


def test_an_attribute_that_maps_to_no_catalogue_metric_is_listed_with_its_sensor() -> None:
    air = run(V2_NORMALIZED)
    # airQualityIndex maps to 'aqi', which this catalogue lacks: dropped, but listed
    assert air.unmapped == [Unmapped("ngsi-v2", "aq-001", "airQualityIndex", "aqi")]
    noise = run(LD_NORMALIZED)
    assert noise.unmapped == [Unmapped("ngsi-ld", "noise-001", "LAmax", "noise_lamax")]


def test_a_catalogue_metric_the_sensor_is_not_registered_for_is_skipped_not_unmapped() -> None:
    doc = {"id": "aq-001", "type": "AirQualityObserved", "dateObserved": "2026-05-01T00:00:00Z",
           "pm25": 35, "noise_laeq": 60}  # fmt: skip
    result = run(doc)
    assert [r.metric for r in result.readings] == ["pm25"]
    assert (result.skipped, result.unmapped) == (1, None)


def test_an_unregistered_entity_s_unmapped_attribute_names_the_entity() -> None:
    doc = {**V2_NORMALIZED, "id": "urn:ngsi:AirQualityObserved:aq-999"}
    result = run(doc)
    assert result.unmapped == [Unmapped("ngsi-v2", "urn:ngsi:AirQualityObserved:aq-999",
                                        "airQualityIndex", "aqi")]  # fmt: skip
