"""Canonical events: what every stage reads and writes, and what downstream services consume.

Why pydantic: one definition gives validation at the edge, JSON in and out (fast, in Rust),
and the published JSON Schemas in `schemas/`. Every model is frozen and carries
`schema_version`; every time is timezone-aware and normalized to UTC.

One module per kind of event; import from `pipeline.models`, which re-exports them all:

- `base`: the frozen base, `SCHEMA_VERSION`, the field types (UTC times, finite numbers),
  `GeoPoint`, `AdminCodes`;
- `enums`: severity, area levels, incident states, kinds and actions, dead-letter reasons;
- `readings`: `Reading`, `ReadingRow` (the hot path's plain row), `CitizenReport`;
- `batches`: `ReadingBatch`, the readings topic's message;
- `incidents`: `Incident` and its parts, units' updates and replies, detection's incident
  events, the audit trail;
- `aggregates`: `AggregateRow`, `StoreRow` (a closed window's row on the worker's path, a
  plain tuple) with `row_model` / `store_row` between the two, `trusted_row` (a row built
  without validation);
- `dead_letters`: `Rejection` (a pure stage's value) and `DeadLetter` (the topic's record).
"""

from pipeline.models.aggregates import (
    STORE_ROW_FIELDS,
    AggregateRow,
    StoreRow,
    row_model,
    store_row,
    trusted_row,
)
from pipeline.models.base import (
    SCHEMA_VERSION,
    AdminCodes,
    Finite,
    GeoPoint,
    PlausibleTime,
    UtcDatetime,
)
from pipeline.models.batches import READING_BATCH_VERSION, ReadingBatch
from pipeline.models.dead_letters import Base64Bytes, DeadLetter, Rejection
from pipeline.models.enums import (
    AreaLevel,
    IncidentAction,
    IncidentKind,
    IncidentState,
    RejectReason,
    Severity,
    SystemAction,
    UnitAction,
)
from pipeline.models.incidents import (
    INCIDENT_EVENTS_VERSION,
    MAX_EVIDENCE_IDS,
    AuditEvent,
    Evidence,
    Incident,
    IncidentEvents,
    IncidentLocation,
    IncidentUpdate,
    UpdateReply,
)
from pipeline.models.readings import (
    MAX_OBSERVED_AT_US,
    AreaCodes,
    CitizenReport,
    Reading,
    ReadingRow,
)

__all__ = [
    "INCIDENT_EVENTS_VERSION",
    "MAX_EVIDENCE_IDS",
    "MAX_OBSERVED_AT_US",
    "READING_BATCH_VERSION",
    "SCHEMA_VERSION",
    "AdminCodes",
    "STORE_ROW_FIELDS",
    "AggregateRow",
    "StoreRow",
    "row_model",
    "store_row",
    "AreaCodes",
    "AreaLevel",
    "AuditEvent",
    "Base64Bytes",
    "CitizenReport",
    "DeadLetter",
    "Evidence",
    "Finite",
    "GeoPoint",
    "Incident",
    "IncidentAction",
    "IncidentEvents",
    "IncidentKind",
    "IncidentLocation",
    "IncidentState",
    "IncidentUpdate",
    "PlausibleTime",
    "Reading",
    "ReadingBatch",
    "ReadingRow",
    "RejectReason",
    "Rejection",
    "Severity",
    "SystemAction",
    "UnitAction",
    "UpdateReply",
    "UtcDatetime",
    "trusted_row",
]
