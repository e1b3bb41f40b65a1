"""The published contract: a JSON Schema per output topic and an AsyncAPI 3 document.

Why generated: the schemas come from the models, so they cannot drift from what the worker
produces; a test regenerates them and fails when the committed files in `schemas/` are stale.
The raw input topics are in the AsyncAPI document too, with one message per input format
the adapter registry knows; their formats are described in docs/formats.md, which the
messages point to (a registered format without a section there fails a test).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pipeline.engine.emit import ORIGIN_HEADER
from pipeline.ingest.adapters.registry import FORMAT_HEADER, FORMATS
from pipeline.models import (
    INCIDENT_EVENTS_VERSION,
    READING_BATCH_VERSION,
    SCHEMA_VERSION,
    AuditEvent,
    CitizenReport,
    DeadLetter,
    Evidence,
    Incident,
    IncidentAction,
    IncidentEvents,
    IncidentLocation,
    IncidentState,
    IncidentUpdate,
    ReadingBatch,
    SystemAction,
    UnitAction,
    UpdateReply,
)
from pipeline.rules.lifecycle import ACTION_MEANINGS, REFUSALS, TRANSITIONS
from pipeline.rules.units import SIGNATURE_HEADER


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


_SIGNATURE = (
    "Base64 Ed25519 signature of the record's value bytes by the unit named in `unit` "
    "(its public key is in the topology's unit keys file); an unsigned update is refused."
)
_INCIDENT_TOPIC = (
    "one record per change a unit acts on (open, severity, escalation, state; evidence at "
    "most once per incidents.evidence_interval), the incident's latest snapshot keyed by "
    "its id (compacted: keep the highest version per id)"
)

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
        f"Every incident in the city: {_INCIDENT_TOPIC}.",
        "send",
    ),
    TopicContract(
        "incidents_district",
        "{prefix}incidents.district.{district}",
        Incident,
        "incident_id",
        f"Incidents in one district (6-digit code): {_INCIDENT_TOPIC}.",
        "send",
    ),
    TopicContract(
        "incidents_street",
        "{prefix}incidents.street.{street}",
        Incident,
        "incident_id",
        f"Incidents in one street/town (9-digit code): {_INCIDENT_TOPIC}.",
        "send",
    ),
    TopicContract(
        "incident_updates",
        "{prefix}incidents.updates",
        IncidentUpdate,
        "incident_id",
        "Actions from handling units: dispatch, acknowledge, resolve, close, reopen, comment; "
        "signed, and answered on the replies topic (docs/incidents.md). The topic is "
        "LogAppendTime: the broker's receive time is the time an update takes effect.",
        "receive",
        {SIGNATURE_HEADER: _SIGNATURE},
    ),
    TopicContract(
        "incident_replies",
        "{prefix}incidents.replies",
        UpdateReply,
        "incident_id",
        "The pipeline's answer to every update whose ids are readable: accepted, or refused "
        "with a reason; a unit finds its own by `update_id` on the partition of the "
        "incident's key.",
        "send",
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


@dataclass(frozen=True)
class RawTopic:
    """A raw input topic: its address, key and what it is for (the formats are FORMATS)."""

    kind: str
    address: str
    key: str
    description: str


#: docs/formats.md
FORMATS_DOC = "docs/formats.md"
#: Input format -> (its section heading in docs/formats.md, what a message carries).
FORMAT_DOCS: dict[str, tuple[str, str]] = {
    "canonical": (
        "canonical (the pipeline's own shape)",
        "The pipeline's own JSON: a reading (sensor_id, metric, value, observed_at) or a "
        "report (report_id, category, reported_at), or an array of them.",
    ),
    "ngsi-v2": (
        "FIWARE NGSI v2 and NGSI-LD (entities, normalized or keyValues)",
        "FIWARE NGSI v2 entities (AirQualityObserved, WaterQualityObserved, "
        "TrafficFlowObserved, NoiseLevelObserved), normalized or keyValues, alone, in an "
        "array or in a notification.",
    ),
    "ngsi-ld": (
        "FIWARE NGSI v2 and NGSI-LD (entities, normalized or keyValues)",
        "NGSI-LD entities of the same types (content-type application/ld+json), alone, in an "
        "array or in a notification.",
    ),
    "sensorthings": (
        "OGC SensorThings API 1.1 Observations",
        "OGC SensorThings API 1.1 Observations (with their Datastream), alone or in a collection.",
    ),
    "open311": (
        "Open311 GeoReport v2 service requests (reports)",
        "Open311 GeoReport v2 service requests: citizen reports.",
    ),
}

_RAW = (
    "Every input format is accepted on this topic (the `cityops-format` header, else "
    "`content-type`, else the document's shape says which); what cannot be used goes to "
    "the dead-letter topic with a reason. The broker's receive time (LogAppendTime) is the "
    "arrival time that bounds clock skew. Formats: docs/formats.md."
)

RAW_TOPICS: tuple[RawTopic, ...] = (
    RawTopic(
        "raw_sensors",
        "{prefix}sensors.raw",
        "the sensor or device id, so each device's records stay in order on one partition",
        f"Raw sensor readings as devices and platforms send them. {_RAW}",
    ),
    RawTopic(
        "raw_reports",
        "{prefix}reports.raw",
        "the report id (or none)",
        f"Raw citizen reports (hotline, app, Open311). {_RAW}",
    ),
)

_RAW_HEADERS = {
    FORMAT_HEADER: "Optional: the format's name or alias (e.g. canonical, ngsi-v2, ngsi-ld, "
    "ngsi, sensorthings, open311); an unknown name is refused (unknown_format).",
    "content-type": "Optional: application/ld+json declares NGSI-LD.",
}


def format_anchor(heading: str) -> str:
    """The link anchor of a Markdown heading (lower case, punctuation dropped, spaces -> -)."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def _raw_channel(topic: RawTopic) -> dict[str, Any]:
    """A raw topic's AsyncAPI channel: one message per input format, each pointing to its
    section of docs/formats.md."""
    messages: dict[str, Any] = {}
    for name in FORMATS:
        heading, summary = FORMAT_DOCS[name]
        messages[name] = {
            "name": name,
            "title": f"{name} input",
            "summary": summary,
            "description": f'See {FORMATS_DOC}, section "{heading}".',
            "contentType": "application/json",
            "x-docs": f"{FORMATS_DOC}#{format_anchor(heading)}",
            "headers": {
                "type": "object",
                "properties": {
                    header: {"type": "string", "description": text}
                    for header, text in _RAW_HEADERS.items()
                },
            },
            "payload": {"type": ["object", "array"], "description": summary},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": topic.key},
                    "bindingVersion": "0.5.0",
                }
            },
        }
    return {
        "address": topic.address,
        "description": topic.description,
        "parameters": {"prefix": {"description": _PARAMETERS["prefix"]}},
        "messages": messages,
    }


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
    channels: dict[str, Any] = {raw.kind: _raw_channel(raw) for raw in RAW_TOPICS}
    operations: dict[str, Any] = {
        f"receive_{raw.kind}": {"action": "receive", "channel": {"$ref": f"#/channels/{raw.kind}"}}
        for raw in RAW_TOPICS
    }
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
            "version": "2.1.0",
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


# --------------------------------------------------------------------------- docs/incidents.md

_DOC_BLOCK = re.compile(
    r"(?P<head><!-- generated: (?P<name>[a-z-]+) -->\n).*?(?P<tail><!-- end generated -->)",
    re.DOTALL,
)


def incident_doc_blocks() -> dict[str, str]:
    """The parts of docs/incidents.md that come from the code, by block name."""
    return {
        "transitions": _transitions_table(),
        "actions": _actions_table(),
        "refusals": _refusals_table(),
        "incident-fields": _fields_table(Incident),
        "evidence-fields": _fields_table(Evidence),
        "location-fields": _fields_table(IncidentLocation),
        "update-fields": _fields_table(IncidentUpdate),
        "reply-fields": _fields_table(UpdateReply),
    }


def render_incident_doc(text: str) -> str:
    """``text`` (docs/incidents.md) with every generated block rewritten from the code."""
    blocks = incident_doc_blocks()

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            msg = f"unknown generated block {name!r} (known: {', '.join(blocks)})"
            raise KeyError(msg)
        return f"{match.group('head')}{blocks[name]}{match.group('tail')}"

    return _DOC_BLOCK.sub(fill, text)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _transitions_table() -> str:
    states = list(IncidentState)
    rows = [
        (f"`{action}`", *(f"→ `{TRANSITIONS[action][s]}`" if s in TRANSITIONS[action] else "—"
                          for s in states))
        for action in (IncidentAction(a) for a in UnitAction)
    ]  # fmt: skip
    return _table(("unit action \\ from", *(f"`{s}`" for s in states)), rows)


def _actions_table() -> str:
    rows = []
    for action in IncidentAction:
        who = [name for name, enum in (("unit", UnitAction), ("system", SystemAction))
               if action in enum.__members__]  # fmt: skip
        rows.append((f"`{action}`", " and ".join(who), ACTION_MEANINGS[action]))
    return _table(("action", "sent by", "meaning"), rows)


def _refusals_table() -> str:
    return _table(("reason", "why"), [(f"`{r}`", text) for r, text in REFUSALS.items()])


def _fields_table(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema["properties"].items():
        meaning = model.model_fields[name].description or ""
        if name == "schema_version":
            meaning = "Version of this record's schema; a breaking change is a new version."
        kind = _type_name(prop) + ("" if name in required else ", optional")
        rows.append((f"`{name}`", kind, meaning))
    return _table(("field", "type", "meaning"), rows)


def _type_name(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type_name(p) for p in prop["anyOf"])
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = str(prop.get("type", "any"))
    if prop.get("format") == "date-time":
        return "time (ISO 8601, UTC)"
    return kind
