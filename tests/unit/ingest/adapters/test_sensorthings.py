"""OGC SensorThings Observations: Datastream mapping, shapes, units."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.ingest.norm_world import reasons, run

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def obs(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "@iot.id": 1001,
        "phenomenonTime": "2026-05-01T08:00:00+08:00",
        "resultTime": "2026-05-01T08:00:05+08:00",
        "result": 55.5,
        "Datastream": {"@iot.id": 42},
    }
    doc.update(fields)
    return doc


def test_datastream_maps_to_sensor_and_metric() -> None:
    result = run(obs())
    assert result.format == "sensorthings"
    [reading] = result.readings
    assert (reading.sensor_id, reading.metric, reading.value) == ("aq-001", "pm25", 55.5)
    assert reading.observed_at == T0
    assert reading.event_id == "sta-42-1001"
    assert reading.areas.street == "310101002"


def test_navigation_link_interval_and_expanded_unit() -> None:
    doc = {
        "result": 0.3,
        "phenomenonTime": "2026-04-30T23:00:00Z/2026-05-01T00:00:00Z",
        "Datastream@iot.navigationLink": "https://sta.example/v1.1/Observations(9)/Datastreams(50)",
    }
    doc_unit = {
        **obs(
            result=0.3,
            Datastream={
                "@iot.id": "50",
                "unitOfMeasurement": {"name": "megapascal", "symbol": "MPa"},
            },
        )
    }
    [plain] = run(doc).readings
    assert plain.sensor_id == "water-001"
    assert plain.value == 0.3  # no unit stated: catalogue's kPa assumed
    assert plain.observed_at == T0
    [converted] = run(doc_unit).readings
    assert converted.value == pytest.approx(300.0)


def test_collection_array_and_data_array() -> None:
    collection = {"@iot.count": 2, "value": [obs(), obs(**{"@iot.id": 1002, "result": 60})]}
    assert [r.value for r in run(collection).readings] == [55.5, 60.0]
    assert len(run([obs(), obs(**{"@iot.id": 7})]).readings) == 2
    data_array = {
        "Datastream": {"@iot.id": 43},
        "components": ["phenomenonTime", "result"],
        "dataArray": [["2026-05-01T00:00:00Z", 40], ["2026-05-01T00:01:00Z", 41]],
    }
    result = run([data_array])
    assert [(r.metric, r.value) for r in result.readings] == [("no2", 40.0), ("no2", 41.0)]
    assert result.readings[0].event_id != result.readings[1].event_id


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (obs(Datastream={"@iot.id": 999}), "unknown_sensor"),
        ({"result": 1, "phenomenonTime": "2026-05-01T00:00:00Z"}, "schema_violation"),
        (obs(result="high"), "schema_violation"),
        (obs(result=None), "schema_violation"),
        (obs(phenomenonTime="not a time", resultTime=None), "schema_violation"),
        (obs(result=5000), "out_of_range"),
        (
            {"Datastream": {"@iot.id": 42}, "components": ["result"], "dataArray": [[1, 2]]},
            "schema_violation",
        ),
    ],
)
def test_bad_observations(doc: dict[str, object], reason: str) -> None:
    result = run(doc)
    assert result.events == []
    assert reasons(result) == [reason]
