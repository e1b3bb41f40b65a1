"""The published contract in schemas/ is current and describes every output topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from pipeline.cli.schemas import rendered
from pipeline.contract import FORMATS_DOC, RAW_TOPICS, TOPICS, format_anchor
from pipeline.engine.emit import Record
from pipeline.engine.stages import NormalizeStage
from pipeline.ingest.adapters.registry import FORMATS
from pipeline.models import AdminCodes, DeadLetter, GeoPoint, Reading, RejectReason
from pipeline.topology import load_topology
from tests.support.paths import DEMO, ROOT

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_committed_contract_file_is_current(name: str) -> None:
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == rendered()[name], f"schemas/{name} is stale: run cityops schemas export"


def test_asyncapi_lists_every_topic_with_its_schema_file() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    raw = {topic.kind for topic in RAW_TOPICS}
    assert set(document["channels"]) == {topic.kind for topic in TOPICS} | raw
    for kind, channel in document["channels"].items():
        if kind in raw:
            continue
        (message,) = channel["messages"].values()
        ref = message["payload"]["$ref"]
        assert (SCHEMAS / ref).is_file(), f"{kind} points at a missing schema {ref}"


def test_asyncapi_lists_the_raw_topics_with_every_input_format_and_its_docs() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text(encoding="utf-8"))
    docs = (ROOT / FORMATS_DOC).read_text(encoding="utf-8")
    anchors = {
        format_anchor(line.lstrip("#")) for line in docs.splitlines() if line.startswith("## ")
    }
    topology = load_topology(DEMO)
    for raw in RAW_TOPICS:
        channel = document["channels"][raw.kind]
        name = topology.topics.name(raw.kind)  # type: ignore[arg-type]  # a raw topic kind
        assert channel["address"].format(prefix=topology.topics.prefix) == name
        assert document["operations"][f"receive_{raw.kind}"]["action"] == "receive"
        assert list(channel["messages"]) == list(FORMATS)  # a new adapter is listed at once
        for message in channel["messages"].values():
            path, anchor = message["x-docs"].split("#")
            assert path == FORMATS_DOC and anchor in anchors, message["x-docs"]
            assert "cityops-format" in message["headers"]["properties"]


def _schema(kind: str) -> dict[str, object]:
    (path,) = SCHEMAS.glob(f"{kind}.v*.schema.json")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_a_produced_readings_batch_validates_against_the_published_schema() -> None:
    """What the normalizer sends on the readings topic (version 2: a batch of columns,
    with arrival and origins) is what the schema describes; a reading of the old shape,
    one per message, is not a valid message any more."""
    stage = NormalizeStage(load_topology(DEMO))
    raw = [
        orjson.dumps({"event_id": f"e{i}", "sensor_id": "aq-001", "metric": "pm25",
                      "value": 80.5 + i, "unit": "ug/m3",
                      "observed_at": f"2026-11-28T08:00:0{i}Z", "lat": 31.23, "lon": 121.47})
        for i in range(3)
    ]  # fmt: skip
    arrived_ms = int(datetime(2026, 11, 28, 8, 0, 10, tzinfo=UTC).timestamp() * 1000)
    records = [Record("raw", None, value, (), 1, 40 + i, arrived_ms) for i, value in enumerate(raw)]
    (emit,) = [e for e in stage.on_raw(records).emits if e.key == b"310101"]
    document = json.loads(emit.value)
    schema = _schema("readings")
    jsonschema.validate(document, schema)
    assert document["schema_version"] == 2 and len(document["event_id"]) == 3
    assert document["arrived_us"] == [arrived_ms * 1000] * 3
    assert document["origin_offset"] == [40, 41, 42]
    assert document["progress"] == {"raw:1": arrived_ms * 1000}
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
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(reading.model_dump_json()), schema)
    document["value"][1] = "eighty"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


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


def test_the_incident_contract_page_is_current() -> None:
    from pipeline.contract import render_incident_doc

    page = Path(__file__).resolve().parents[2] / "docs" / "incidents.md"
    text = page.read_text(encoding="utf-8")
    assert text.count("<!-- generated: ") == 8
    assert render_incident_doc(text) == text, "stale: run cityops incidents contract"


def test_units_may_send_only_unit_actions_and_are_told_how_to_sign() -> None:
    update = _schema("incident_updates")
    actions = update["$defs"]["UnitAction"]["enum"]  # type: ignore[index]
    assert actions == ["dispatch", "acknowledge", "resolve", "close", "reopen", "comment"]
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text(encoding="utf-8"))
    (message,) = document["channels"]["incident_updates"]["messages"].values()
    assert "cityops-signature" in message["headers"]["properties"]
    assert document["channels"]["incident_replies"]["address"] == "{prefix}incidents.replies"
