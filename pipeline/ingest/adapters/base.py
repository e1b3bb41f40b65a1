"""The neutral intermediate every format parser produces, the adapter record, shared helpers.

Why two layers: a parser only knows its wire format (where the value, unit, time and place
sit); everything that needs the topology (catalogue names, unit conversion, physical range,
sensor registry, areas, PII masking, event ids) happens once, in :mod:`pipeline.ingest.normalize`,
so the four formats cannot drift apart in how they validate.

Parsers take an already decoded JSON document and never raise for bad input: a problem
becomes a :class:`Problem` (reason + detail) in the returned list.

Every format module exposes ``ADAPTERS``, its :class:`Adapter` records; the registry
(:mod:`pipeline.ingest.adapters.registry`) finds them by itself, so a new input format is one
new module here, its corpus directory and its tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.models import RejectReason

__all__ = [
    "DATASTREAM_PREFIX",
    "Adapter",
    "Observation",
    "ParseOutput",
    "Problem",
    "ReportDraft",
    "SchemaError",
    "as_number",
    "as_text",
    "geometry_point",
    "no_envelope",
    "parse_time",
]

MAX_ID_LENGTH = 200
DATASTREAM_PREFIX = "datastream:"
"""A sensor id ``datastream:<id>`` names a topology datastream (sensor and metric), not a
sensor: resolution looks it up in ``topology.datastreams`` (SensorThings names only those)."""


@dataclass(slots=True)
class Observation:
    """One measured value as the source said it, before any catalogue lookup.

    ``sensor_ids`` are candidate registry ids, best first (an NGSI entity URN, its last
    segment, its ``refDevice``); ``metric`` is in the source vocabulary and
    ``metric_table`` maps that vocabulary to catalogue names (None: names are already
    catalogue names). ``unit`` None means "the source states none": the catalogue's
    canonical unit is assumed, or ``default_unit`` (a format convention) when set.
    """

    sensor_ids: tuple[str, ...]
    metric: str
    value: float
    unit: str | None
    observed_at: datetime
    source_format: str
    lat: float | None = None
    lon: float | None = None
    event_id: str | None = None
    default_unit: str | None = None
    metric_table: Mapping[str, tuple[str, str | None]] | None = None
    group: int = 0
    """Index of the source entity within its document (one entity -> several items)."""
    optional: bool = False
    """True when the source volunteered it among others (an NGSI entity's attributes):
    an unknown metric is then skipped, not rejected."""


@dataclass(slots=True)
class ReportDraft:
    """A citizen report as the source said it (description not yet masked)."""

    report_id: str
    category: str
    reported_at: datetime
    source_format: str
    channel: str
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    area: str | None = None
    urgent: bool | None = None
    category_name: str | None = None
    group: int = 0
    """Index of the source element within its document (a batch of requests)."""


@dataclass(slots=True)
class Problem:
    """Why one document (or one element of a batch, `index`) was refused."""

    reason: RejectReason
    detail: str
    index: int | None = None


@dataclass(slots=True)
class ParseOutput:
    """What a parser made of one decoded document."""

    items: list[Observation | ReportDraft] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    elements: list[Any] | None = None
    """The batch's elements when the document was a batch (a bad one is dead-lettered
    alone, by its index)."""


class SchemaError(ValueError):
    """Raised inside a parser for one element; the parser turns it into a Problem."""


def no_envelope(doc: Any) -> Any:
    """The default ``unwrap``: the document is its own body (an object, or a bare array)."""
    return doc


def _never(doc: Any) -> bool:
    del doc
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Adapter:
    """One input format as the registry sees it: its names, how to recognise, open and parse it.

    Why a record of functions rather than a class per format: a format module is a handful
    of pure functions, and one module may declare several formats over them (NGSI: v2, LD,
    and the header ``ngsi`` meaning either). The registry asks, in this order: a header
    (``aliases``, ``content_types``), else the shape of the document (envelopes opened in
    ``order``, then ``looks_like`` in ``priority`` order, then ``claims_envelope``).
    """

    name: str
    """The format's name: a ``cityops-format`` header value and the events' ``source_format``."""
    parse: Callable[[Any, ParseOutput, int], None]
    """``parse(element, out, group)``: append the items of one element (a whole document, or
    member ``group`` of a batch) to ``out``; raise SchemaError when it is not one."""
    priority: int | None
    """Place in shape detection, lowest asked first (canonical 10, sensorthings 20, open311
    30, NGSI 40); None: only a header declares this format, and it is not in FORMATS."""
    order: int = 100
    """Place in FORMATS (the dry run's ``--format`` choices), and in which order envelopes
    are opened: the first ``unwrap`` that opens a document decides its first object."""
    looks_like: Callable[[Mapping[str, Any]], bool] = _never
    """Whether the first object of a document (after its envelope) is in this format."""
    unwrap: Callable[[Any], Any] = no_envelope
    """The element list inside an envelope (a notification's ``data``, a collection's
    ``value``), else the document itself; a bare array is a batch for every format."""
    claims_envelope: Callable[[Any], bool] = _never
    """Whether the envelope alone names this format when no ``looks_like`` recognised the
    first object (a notification of malformed entities is still NGSI: parsing says why)."""
    aliases: tuple[str, ...] = ()
    """Other ``cityops-format`` values meaning this format (lower case; the name is implied)."""
    content_types: tuple[str, ...] = ()
    """Fragments of a ``content-type`` header that declare this format (``ld+json``)."""


def as_text(value: Any, name: str, *, required: bool = True) -> str | None:
    """A non-empty string (ints accepted for ids), bounded in length."""
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH:
        return value  # the common case, first
    if value is None:
        if required:
            msg = f"{name}: missing"
            raise SchemaError(msg)
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        msg = f"{name}: must be a non-empty string of at most {MAX_ID_LENGTH} characters"
        raise SchemaError(msg)
    return value


def as_number(value: Any, name: str) -> float:
    """A finite JSON number (not a boolean, not a string)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1 << 63 else math.inf
        if math.isfinite(number):
            return number
    msg = f"{name}: must be a finite number, got {type(value).__name__}"
    raise SchemaError(msg)


def parse_time(value: Any, name: str) -> datetime:
    """An ISO 8601 time with a UTC offset, as an aware UTC datetime.

    An interval ``start/end`` (NGSI TrafficFlowObserved, SensorThings phenomenonTime)
    gives its end: the time the measurement is complete.
    """
    if not isinstance(value, str) or not 10 <= len(value) <= 80:
        msg = f"{name}: must be an ISO 8601 time string"
        raise SchemaError(msg)
    if "/" in value:
        value = value.rpartition("/")[2]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        msg = f"{name}: not an ISO 8601 time: {value[:40]!r}"
        raise SchemaError(msg) from exc
    if parsed.tzinfo is UTC:
        return parsed  # stamped Z or +00:00: already what we want
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        msg = f"{name}: time without a UTC offset: {value[:40]!r}"
        raise SchemaError(msg)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        msg = f"{name}: time out of range: {value[:40]!r}"
        raise SchemaError(msg) from exc


def _coordinate(pair: Any) -> tuple[float, float] | None:
    if isinstance(pair, list) and len(pair) >= 2:
        lon, lat = pair[0], pair[1]
        if (
            isinstance(lon, int | float)
            and isinstance(lat, int | float)
            and not isinstance(lon, bool)
            and not isinstance(lat, bool)
        ):
            return float(lat), float(lon)
    return None


def geometry_point(geometry: Any, name: str) -> tuple[float, float]:
    """A representative (lat, lon) of a GeoJSON geometry.

    Point: itself; LineString (a road segment): its middle vertex; Polygon: the mean of
    its outer ring. Coordinates are validated to WGS 84 bounds.
    """
    point: tuple[float, float] | None = None
    if isinstance(geometry, dict):
        kind = geometry.get("type")
        coords = geometry.get("coordinates")
        if kind == "Point":
            point = _coordinate(coords)
        elif kind in ("LineString", "MultiPoint") and isinstance(coords, list) and coords:
            point = _coordinate(coords[len(coords) // 2])
        elif kind == "Polygon" and isinstance(coords, list) and coords:
            ring = coords[0]
            if isinstance(ring, list) and ring:
                pairs = [_coordinate(p) for p in ring]
                if all(p is not None for p in pairs):
                    lats = [p[0] for p in pairs if p is not None]
                    lons = [p[1] for p in pairs if p is not None]
                    point = (sum(lats) / len(lats), sum(lons) / len(lons))
    if point is None:
        msg = f"{name}: not a GeoJSON Point, LineString or Polygon"
        raise SchemaError(msg)
    return check_lat_lon(point[0], point[1], name)


def check_lat_lon(lat: Any, lon: Any, name: str) -> tuple[float, float]:
    """Validated WGS 84 latitude and longitude."""
    lat_f = as_number(lat, f"{name}.lat")
    lon_f = as_number(lon, f"{name}.lon")
    if not (-90.0 <= lat_f <= 90.0 and -180.0 <= lon_f <= 180.0):
        msg = f"{name}: coordinates out of range ({lat_f}, {lon_f})"
        raise SchemaError(msg)
    return lat_f, lon_f
