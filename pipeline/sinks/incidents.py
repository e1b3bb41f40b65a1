"""Incidents' current state as store rows: one row per incident version, newest wins.

Why a table beside the aggregates: dashboards list and map incidents with SQL (Grafana's
ClickHouse datasource), and a restart or a new dashboard must not need a replay of the
incident topics to know where things stand. The worker writes every incident record it
publishes on the city topic (every incident reaches it); the table keeps, per
``incident_id``, the row with the highest ``version`` (``ReplacingMergeTree(version)``,
read with ``FINAL``), so a replayed or repeated record changes nothing.

Rows are read from the published JSON rather than from the ``Incident`` model, so a field
the contract adds later (or an older record without one, like ``location``) never stops
the sink: what the table does not know it ignores, what is missing is NULL or empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.sinks.base import StoreError

__all__ = ["IncidentRow", "incident_row", "incidents_token_for"]


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One incident version, in ``clickhouse_sql.INCIDENT_COLUMNS`` order.

    Text fields an incident may lack (``metric``, ``category``, ``district``...) are ``""``;
    ``lat``/``lon`` are None when the incident carries no location."""

    incident_id: str
    version: int
    state: str
    severity: str
    kind: str
    rule_id: str
    subject: str
    metric: str
    category: str
    owner_level: str
    owner_area: str
    district: str
    street: str
    grid: str
    lat: float | None
    lon: float | None
    peak_value: float | None
    threshold: float | None
    escalations: int
    last_action: str
    opened_at: datetime
    updated_at: datetime
    ack_due: datetime | None
    resolve_due: datetime | None
    schema_version: int


def incident_row(value: bytes | Mapping[str, Any]) -> IncidentRow:
    """The row of one published incident record (its JSON, or the decoded mapping)."""
    data = orjson.loads(value) if isinstance(value, bytes | bytearray) else value
    try:
        areas = data.get("areas") or {}
        evidence = data.get("evidence") or {}
        lat, lon = _point(data.get("location"))
        return IncidentRow(
            incident_id=str(data["incident_id"]),
            version=int(data.get("version", 1)),
            state=str(data.get("state", "open")),
            severity=str(data["severity"]),
            kind=str(data.get("kind", "")),
            rule_id=str(data.get("rule_id", "")),
            subject=str(data.get("subject", "")),
            metric=str(data.get("metric") or ""),
            category=str(data.get("category") or ""),
            owner_level=str(data.get("owner_level", "")),
            owner_area=str(data.get("owner_area", "")),
            district=str(areas.get("district") or ""),
            street=str(areas.get("street") or ""),
            grid=str(areas.get("grid") or ""),
            lat=lat,
            lon=lon,
            peak_value=_number(evidence.get("peak_value")),
            threshold=_number(evidence.get("threshold")),
            escalations=int(data.get("escalations", 0)),
            last_action=str(data.get("last_action", "")),
            opened_at=_moment(data["opened_at"]),
            updated_at=_moment(data["updated_at"]),
            ack_due=_optional_moment(data.get("ack_due")),
            resolve_due=_optional_moment(data.get("resolve_due")),
            schema_version=int(data.get("schema_version", 1)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"not an incident record: {exc!r}"
        raise StoreError(msg) from exc


def incidents_token_for(rows: Sequence[IncidentRow]) -> str:
    """A dedup token from the rows' identity: an incident's version fixes its content."""
    digest = hashlib.blake2b(digest_size=16)
    for row in rows:
        digest.update(f"{row.incident_id}|{row.version}|{row.updated_at.isoformat()}\n".encode())
    return f"inc-{len(rows)}-{digest.hexdigest()}"


def _point(location: Any) -> tuple[float | None, float | None]:
    """(lat, lon) of a location given as ``{"lat", "lon"}`` or a GeoJSON point."""
    if not isinstance(location, Mapping):
        return None, None
    if "lat" in location and "lon" in location:
        return _number(location["lat"]), _number(location["lon"])
    coordinates = location.get("coordinates")
    if location.get("type") == "Point" and isinstance(coordinates, list | tuple):
        if len(coordinates) >= 2:
            return _number(coordinates[1]), _number(coordinates[0])
    return None, None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_moment(value: Any) -> datetime | None:
    return None if value is None else _moment(value)


def _moment(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 text."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        msg = f"timestamp without a timezone: {value!r}"
        raise ValueError(msg)
    return moment.astimezone(UTC)
