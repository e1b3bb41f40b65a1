"""Open311 GeoReport v2 service requests -> report drafts.

Required by the spec: ``service_request_id``, ``status`` (``open`` / ``closed``),
``service_code``, ``requested_datetime``. ``service_code`` is looked up as a report
category id (the topology's categories are the city's service list); when it is not one,
``service_name`` is matched against category names by the resolution step. ``lat`` /
``long`` give the place; ``description`` (at most 4000 characters) is masked later.
A GET response (an array of requests) is accepted as a batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.adapters.base import (
    Adapter,
    ParseOutput,
    ReportDraft,
    SchemaError,
    as_text,
    check_lat_lon,
    parse_time,
)

FORMAT = "open311"
_STATUSES = frozenset({"open", "closed"})
MAX_DESCRIPTION = 4000


def looks_like(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded object is a GeoReport v2 service request."""
    return "service_request_id" in doc or ("service_code" in doc and "requested_datetime" in doc)


def parse(doc: Any, out: ParseOutput, group: int = 0) -> None:
    """Append one service request to ``out``; SchemaError when it is not one."""
    if not isinstance(doc, dict):
        msg = "expected a GeoReport v2 service request object"
        raise SchemaError(msg)
    request_id = as_text(doc.get("service_request_id"), "service_request_id")
    status = doc.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        msg = "status: must be 'open' or 'closed'"
        raise SchemaError(msg)
    code = as_text(doc.get("service_code"), "service_code")
    description = doc.get("description") or ""
    if not isinstance(description, str):
        msg = "description: must be a string"
        raise SchemaError(msg)
    if len(description) > MAX_DESCRIPTION:
        msg = f"description: longer than {MAX_DESCRIPTION} characters"
        raise SchemaError(msg)
    lat = lon = None
    if doc.get("lat") is not None or doc.get("long") is not None:
        lat, lon = check_lat_lon(_number(doc.get("lat")), _number(doc.get("long")), "lat/long")
    out.items.append(
        ReportDraft(
            report_id=f"open311-{request_id}",
            category=str(code),
            reported_at=parse_time(doc.get("requested_datetime"), "requested_datetime"),
            source_format=FORMAT,
            channel="open311",
            description=description,
            lat=lat,
            lon=lon,
            category_name=as_text(doc.get("service_name"), "service_name", required=False),
            group=group,
        )
    )


def _number(value: Any) -> Any:
    """GeoReport servers often send coordinates as strings ("31.23")."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


ADAPTERS = (
    Adapter(name=FORMAT, aliases=("georeport", "georeport-v2"), order=40, priority=30,
            looks_like=looks_like, parse=parse),
)  # fmt: skip
