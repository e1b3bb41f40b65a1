"""The client's pure parts: incident parsing by schema version, the reply partition."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from pipeline.client import IncompatibleSchema, parse_incident, reply_partition
from tests.unit.rules.incident_world import make


def test_an_incident_parses_and_unknown_fields_of_its_version_are_ignored() -> None:
    incident = make()
    doc = orjson.loads(incident.model_dump_json())
    assert parse_incident(incident.model_dump_json().encode()) == incident
    assert parse_incident(orjson.dumps({**doc, "added_later": 1})) == incident


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps({"schema_version": 2}), "schema_version 2"),
        (orjson.dumps({"schema_version": 1, "incident_id": "x"}), "not a valid incident"),
    ],
)
def test_another_version_or_no_incident_is_refused(value: bytes, message: str) -> None:
    with pytest.raises(IncompatibleSchema, match=message):
        parse_incident(value)


def test_the_reply_partition_is_the_producers_default_for_the_incident_key() -> None:
    partitioner = DefaultPartitioner()
    for n in range(50):
        key = f"inc-{n:016x}"
        assert reply_partition(key, 6) == partitioner(key.encode(), list(range(6)), [])
