"""The published contract: a JSON Schema per output topic and an AsyncAPI 3 document.

Why generated: the schemas come from the models, so they cannot drift from what the worker
produces; a test regenerates them and fails when the committed files in `schemas/` are stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pipeline.engine.emit import ORIGIN_HEADER
from pipeline.models import (
    INCIDENT_EVENTS_VERSION,
    READING_BATCH_VERSION,
    SCHEMA_VERSION,
    AuditEvent,
    CitizenReport,
    DeadLetter,
    Incident,
    IncidentEvents,
    IncidentUpdate,
    ReadingBatch,
)


@dataclass(frozen=True)
class TopicContract:
    """One topic kind: its address pattern, key, value model and who writes it."""

    kind: str
    address: str
    model: type[BaseModel]
    key: str
    description: str
    direction: str  # "send" (cityops produces) or "receive" (cityops consumes)
    headers: dict[str, str] | None = None  # header name -> what it carries
    version: int = SCHEMA_VERSION

    @property
    def schema_file(self) -> str:
        """The schema's file name in `schemas/` (versioned: a breaking change is a new file)."""
        return f"{self.kind}.v{self.version}.schema.json"


_ORIGIN = (
    "The raw record this event was made from, `topic:partition:offset:n` (its n-th event): "
    "a re-emission after a crash repeats it, and consumers may deduplicate on it."
)

TOPICS: tuple[TopicContract, ...] = (
    TopicContract(
        "readings",
        "{prefix}readings",
        ReadingBatch,
        "district of every reading in the batch (the city's code for readings without one)",
        "Normalized sensor readings in the catalogue's canonical units, many per message as "
        "columns (version 2; version 1 was one Reading per message). Read one with "
        "`ReadingBatch.model_validate_json(value).readings()`, or zip the columns: index i "
        "of every column is reading i. The origin columns name each reading's raw record.",
        "send",
        version=READING_BATCH_VERSION,
    ),
    TopicContract(
        "reports",
        "{prefix}reports",
        CitizenReport,
        "category",
        "Normalized citizen reports; personal data in descriptions is masked.",
        "send",
        {ORIGIN_HEADER: _ORIGIN},
    ),
    TopicContract(
        "deadletter",
        "{prefix}deadletter",
        DeadLetter,
        "source key (if any)",
        "Records that could not be used, with a reason code and the original bytes.",
        "send",
    ),
    TopicContract(
        "incidents_city",
        "{prefix}incidents.city",
        Incident,
        "incident_id",
        "Every incident and every change to it, city-wide.",
        "send",
    ),
    TopicContract(
        "incidents_district",
        "{prefix}incidents.district.{district}",
        Incident,
        "incident_id",
        "Incidents in one district (6-digit code), every change in order per incident.",
        "send",
    ),
    TopicContract(
        "incidents_street",
        "{prefix}incidents.street.{street}",
        Incident,
        "incident_id",
        "Incidents in one street/town (9-digit code).",
        "send",
    ),
    TopicContract(
        "incident_updates",
        "{prefix}incidents.updates",
        IncidentUpdate,
        "incident_id",
        "Actions from handling units: dispatch, acknowledge, resolve, close, reopen, comment.",
        "receive",
    ),
    TopicContract(
        "incident_events",
        "{prefix}incidents.events",
        IncidentEvents,
        "incident_id",
        "Internal: detection's events for the lifecycle, one message per incident and batch "
        "(a JSON array of incident snapshots; `last_action` is the event). Version 2; "
        "version 1 was one snapshot per message. Units follow the incident topics instead.",
        "send",
        version=INCIDENT_EVENTS_VERSION,
    ),
    TopicContract(
        "audit",
        "{prefix}incidents.audit",
        AuditEvent,
        "incident_id",
        "Every incident transition, hash-chained per incident (cityops audit verify).",
        "send",
    ),
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12) of each topic's value."""
    schemas: dict[str, dict[str, Any]] = {}
    for topic in TOPICS:
        schema = topic.model.model_json_schema(mode="serialization")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": topic.schema_file,
            "description": topic.description,
            **schema,
        }
        schemas[topic.schema_file] = schema
    return schemas


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3.0 document describing every topic (address, key, value schema)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        params = {
            name: {"description": _PARAMETERS[name]}
            for name in ("prefix", "district", "street")
            if "{" + name + "}" in topic.address
        }
        message: dict[str, Any] = {
            "name": topic.model.__name__,
            "contentType": "application/json",
        }
        if topic.headers:
            message["headers"] = {
                "type": "object",
                "properties": {
                    name: {"type": "string", "description": text}
                    for name, text in topic.headers.items()
                },
            }
        channels[topic.kind] = {
            "address": topic.address,
            "description": topic.description,
            "parameters": params,
            "messages": {
                topic.model.__name__: {
                    **message,
                    "payload": {"$ref": f"./{topic.schema_file}"},
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": f"{topic.key}"},
                            "bindingVersion": "0.5.0",
                        }
                    },
                }
            },
        }
        operations[f"{topic.direction}_{topic.kind}"] = {
            "action": topic.direction,
            "channel": {"$ref": f"#/channels/{topic.kind}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "cityops topics",
            "version": "2.0.0",
            "description": "Topics a cityops deployment reads and writes. Names are the "
            "topology's prefix plus these addresses; values are JSON.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }


_PARAMETERS = {
    "prefix": "The topology's topics.prefix, e.g. 'cityops.shanghai.'",
    "district": "A district code from the topology, e.g. 310101",
    "street": "A street/town code from the topology, e.g. 310101002",
}
