"""The published contract in schemas/ is current and describes every output topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.cli.schemas import rendered
from pipeline.contract import TOPICS
from pipeline.models import AdminCodes, DeadLetter, GeoPoint, Reading, RejectReason

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_committed_contract_file_is_current(name: str) -> None:
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == rendered()[name], f"schemas/{name} is stale: run cityops schemas export"


def test_asyncapi_lists_every_topic_with_its_schema_file() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {topic.kind for topic in TOPICS}
    for kind, channel in document["channels"].items():
        (message,) = channel["messages"].values()
        ref = message["payload"]["$ref"]
        assert (SCHEMAS / ref).is_file(), f"{kind} points at a missing schema {ref}"


def _schema(kind: str) -> dict[str, object]:
    (path,) = SCHEMAS.glob(f"{kind}.v*.schema.json")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_a_produced_reading_validates_against_the_published_schema() -> None:
    reading = Reading(
        event_id="e1",
        sensor_id="aq-1",
        metric="pm25",
        value=80.5,
        unit="ug/m3",
        observed_at=datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        location=GeoPoint(lat=31.23, lon=121.47),
        areas=AdminCodes(district="310101"),
    )
    jsonschema.validate(json.loads(reading.model_dump_json()), _schema("readings"))


def test_a_dead_letter_validates_and_a_broken_one_does_not() -> None:
    letter = DeadLetter(
        reason=RejectReason.invalid_json,
        detail="line 1",
        source_topic="raw",
        partition=0,
        offset=7,
        original=b"{oops",
        received_at=datetime(2026, 11, 28, tzinfo=UTC),
    )
    document = json.loads(letter.model_dump_json())
    schema = _schema("deadletter")
    jsonschema.validate(document, schema)
    document["reason"] = "no_such_reason"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)
