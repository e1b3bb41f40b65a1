"""Canonical JSON: the pipeline's own Reading / CitizenReport shape (one object or an array).

Readings: ``sensor_id, metric, value, observed_at`` required; ``event_id, unit, location
{lat, lon}`` (or top-level ``lat``/``lon``) optional. Reports: ``report_id, category,
reported_at`` required; ``channel, description, location, area, urgent`` optional.
Fields the pipeline itself adds (``areas``, ``source_format``, ``schema_version``) are
ignored, so a normalized record can be fed back in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.adapters.base import (
    Adapter,
    Observation,
    ParseOutput,
    ReportDraft,
    SchemaError,
    as_number,
    as_text,
    check_lat_lon,
    parse_time,
)

FORMAT = "canonical"


def looks_like(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded object is a canonical reading or report."""
    return ("sensor_id" in doc and "metric" in doc) or ("report_id" in doc and "category" in doc)


def _location(doc: Mapping[str, Any]) -> tuple[float | None, float | None]:
    location = doc.get("location")
    if location is not None:
        if not isinstance(location, dict):
            msg = "location: must be an object {lat, lon}"
            raise SchemaError(msg)
        return check_lat_lon(location.get("lat"), location.get("lon"), "location")
    if "lat" in doc or "lon" in doc:
        return check_lat_lon(doc.get("lat"), doc.get("lon"), "location")
    return None, None


def parse_one(doc: Any) -> Observation | ReportDraft:
    """One canonical object; SchemaError when it is not one."""
    if not isinstance(doc, dict):
        msg = "expected a JSON object"
        raise SchemaError(msg)
    if "sensor_id" in doc:
        lat, lon = _location(doc)
        unit = as_text(doc.get("unit"), "unit", required=False)
        return Observation(
            sensor_ids=(str(as_text(doc.get("sensor_id"), "sensor_id")),),
            metric=str(as_text(doc.get("metric"), "metric")),
            value=as_number(doc.get("value"), "value"),
            unit=unit,
            observed_at=parse_time(doc.get("observed_at"), "observed_at"),
            source_format=FORMAT,
            lat=lat,
            lon=lon,
            event_id=as_text(doc.get("event_id"), "event_id", required=False),
        )
    if "report_id" in doc:
        lat, lon = _location(doc)
        description = doc.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            msg = "description: must be a string"
            raise SchemaError(msg)
        urgent = doc.get("urgent")
        if urgent is not None and not isinstance(urgent, bool):
            msg = "urgent: must be true or false"
            raise SchemaError(msg)
        return ReportDraft(
            report_id=str(as_text(doc.get("report_id"), "report_id")),
            category=str(as_text(doc.get("category"), "category")),
            reported_at=parse_time(doc.get("reported_at"), "reported_at"),
            source_format=FORMAT,
            channel=as_text(doc.get("channel"), "channel", required=False) or "app",
            description=description,
            lat=lat,
            lon=lon,
            area=as_text(doc.get("area"), "area", required=False),
            urgent=urgent,
        )
    msg = "neither a reading (sensor_id) nor a report (report_id)"
    raise SchemaError(msg)


def parse(doc: Any, out: ParseOutput, group: int = 0) -> None:
    """Append the items of one document (an object or one array element) to ``out``."""
    item = parse_one(doc)
    item.group = group  # its index in a batch: a bad one is dead-lettered alone
    out.items.append(item)


ADAPTERS = (
    Adapter(name=FORMAT, aliases=("cityops",), order=0, priority=10,
            looks_like=looks_like, parse=parse),
)  # fmt: skip
