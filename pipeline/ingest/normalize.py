"""Raw bytes -> canonical events (Reading / CitizenReport) and rejections; never raises.

The shared resolution step behind every format parser (:mod:`pipeline.ingest.adapters`): source
metric names to catalogue names, unit conversion to the canonical unit (only units the
catalogue accepts), the physical range, the sensor registry or else coordinates to areas,
PII masking of report texts, deterministic event ids, duplicates. Everything per topology
is looked up once and cached, so the per-event cost stays a few microseconds.

Order of checks (the first failing one names the rejection): size (``oversized``), JSON
(``invalid_json``), format (``unknown_format``), shape (``schema_violation``), metric
(``unknown_metric``), sensor (``unknown_sensor``), place (``outside_jurisdiction``), unit
(``unit_not_convertible``), range (``out_of_range``), category (``unknown_category``),
``duplicate``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.aggregates.codec import EPOCH, from_micros, iso, to_micros
from pipeline.ingest.adapters.base import (
    DATASTREAM_PREFIX,
    MAX_ID_LENGTH,
    Observation,
    ReportDraft,
)
from pipeline.ingest.adapters.registry import (
    HeaderError,
    HeadersLike,
    detect_format,
    format_from_headers,
    parse_document,
)
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.geo import AreaResolver
from pipeline.ingest.pii import mask_personal_data
from pipeline.models import (
    AdminCodes,
    AreaLevel,
    CitizenReport,
    GeoPoint,
    Reading,
    ReadingRow,
    Rejection,
    RejectReason,
)
from pipeline.topology import Metric, ReportCategory, Topology
from pipeline.units import UnitError, canonical_unit_name, unit

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "NormalizeResult", "Normalizer", "event_id", "normalize"]

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
_CACHE_LIMIT = 4096
#: Registered sensors whose lookups stay cached (least recently used beyond). Why bounded:
#: a cached sensor costs ~1 KB (its location model, metric set), so 100,000 sensors would
#: hold ~100 MB, while rebuilding a missed one costs a few microseconds.
_SENSOR_CACHE = 16384
_MAX_DESCRIPTION = 4000
CANONICAL = "canonical"
#: Whatever the arrival, event times from 2000 up to (not including) 2100 only.
_EARLIEST_US = 946_684_800_000_000
_LATEST_US = 4_102_444_800_000_000


def _plain_text(value: Any) -> bool:
    """Absent, or a string the general parser would take as it is."""
    return value is None or (type(value) is str and 0 < len(value) <= MAX_ID_LENGTH)


def _stamp(micros: int) -> str:
    """An event time for a rejection's detail."""
    return iso(from_micros(micros))


@dataclass(slots=True)
class NormalizeResult:
    """What one raw message became: readings and reports in order, rejections, the format."""

    items: list[ReadingRow | CitizenReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    format: str | None = None
    elements: list[Any] | None = None
    """The record's elements when it was a batch (see `Rejection.element`)."""
    skipped: int = 0
    """Measurements volunteered by the source (NGSI attributes) that are not in the catalogue
    or not registered for the sensor: dropped without a rejection."""

    @property
    def events(self) -> list[Reading | CitizenReport]:
        """Every event as its canonical model, in order."""
        return [i.to_reading() if isinstance(i, ReadingRow) else i for i in self.items]

    @property
    def rows(self) -> list[ReadingRow]:
        """The readings as plain rows (the fast form)."""
        return [i for i in self.items if isinstance(i, ReadingRow)]

    @property
    def readings(self) -> list[Reading]:
        """The readings among the events, as models."""
        return [i.to_reading() for i in self.items if isinstance(i, ReadingRow)]

    @property
    def reports(self) -> list[CitizenReport]:
        """The citizen reports among the events."""
        return [i for i in self.items if isinstance(i, CitizenReport)]


def event_id(sensor_id: str, metric: str, observed_at_iso: str, value: float) -> str:
    """Deterministic id of a reading whose source gave none: a replay gets the same id."""
    key = f"{sensor_id}|{metric}|{observed_at_iso}|{value!r}".encode()
    return blake2b(key, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class _SensorInfo:
    sensor_id: str
    metrics: frozenset[str]
    location: tuple[float, float]
    areas: AdminCodes


# (source factor, source offset, target factor, target offset): the same arithmetic as
# pipeline.units.convert, so results are bit-identical to it.
_Conversion = tuple[float, float, float, float]


def _admin_codes(levels: Mapping[AreaLevel, str]) -> AdminCodes:
    return AdminCodes(
        district=levels.get(AreaLevel.district),
        street=levels.get(AreaLevel.street),
        grid=levels.get(AreaLevel.grid),
        community=levels.get(AreaLevel.community),
    )


class _Reject(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Skip(Exception):  # noqa: N818 - internal control flow, never escapes
    pass


class Normalizer:
    """Normalize raw messages for one topology (build once, call per message)."""

    def __init__(
        self,
        topology: Topology,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        dedup: DuplicateFilter | None = None,
        areas: AreaResolver | None = None,
    ) -> None:
        self.topology = topology
        self.max_message_bytes = max_message_bytes
        self.dedup = dedup
        self._geo = areas if areas is not None else AreaResolver(topology)
        self._metrics: dict[str, Metric] = dict(topology.metrics)
        self._skew_us = to_micros(EPOCH + topology.event_time.max_clock_skew)
        self._age_us = to_micros(EPOCH + topology.event_time.max_age)
        self._datastreams: dict[str, tuple[str, str]] = {
            str(key): (ds.sensor, ds.metric) for key, ds in topology.datastreams.items()
        }
        self._categories: dict[str, ReportCategory] = {c.id: c for c in topology.report_categories}
        self._category_names: dict[str, ReportCategory] = {}
        for category in topology.report_categories:
            for name in (category.name, category.name_en):
                if name:
                    self._category_names.setdefault(name.casefold(), category)
        self._sensor = functools.lru_cache(maxsize=_SENSOR_CACHE)(self._sensor_info)
        self._areas: dict[str, AdminCodes] = {}
        self._conversions: dict[tuple[str, str], _Conversion | str] = {}

    # -- cached lookups ----------------------------------------------------------------

    def _sensor_info(self, sensor_id: str) -> _SensorInfo | None:
        """What a reading needs of a registered sensor (None: not registered)."""
        sensor = self.topology.sensor(sensor_id)
        if sensor is None:
            return None
        areas = self._area_codes(sensor.area)
        grid = self._geo.grid
        if grid is not None:  # a registered sensor's cell is where it stands
            areas = areas.model_copy(update={"grid": grid.cell(sensor.lat, sensor.lon)})
        return _SensorInfo(
            sensor_id=sensor.id,
            metrics=frozenset(sensor.metrics),
            location=(sensor.lat, sensor.lon),
            areas=areas,
        )

    def _area_codes(self, code: str) -> AdminCodes:
        found = self._areas.get(code)
        if found is None:
            found = self._areas[code] = _admin_codes(self.topology.admin_codes(code))
        return found

    def _conversion(self, metric_name: str, metric: Metric, source: str) -> _Conversion:
        key = (metric_name, source)
        found = self._conversions.get(key)
        if found is None:
            try:
                if not metric.accepts(source):
                    accepted = ", ".join(metric.accepted_units)
                    msg = f"{metric_name}: unit {source!r} not accepted (accepted: {accepted})"
                    raise UnitError(msg)
                src = unit(canonical_unit_name(source))
                dst = unit(metric.unit)
                found = (src.factor, src.offset, dst.factor, dst.offset)
            except UnitError as exc:
                found = str(exc)
            if len(self._conversions) < _CACHE_LIMIT:
                self._conversions[key] = found
        if isinstance(found, str):
            raise _Reject(RejectReason.unit_not_convertible, found)
        return found

    def _place(self, lat: float, lon: float) -> AdminCodes:
        levels = self._geo.resolve(lat, lon)
        if levels is None:
            detail = f"({lat:.5f}, {lon:.5f}) is outside every area of {self.topology.id}"
            raise _Reject(RejectReason.outside_jurisdiction, detail)
        cell = levels.get(AreaLevel.grid)
        smallest = max((lv for lv in levels if lv != AreaLevel.grid), key=lambda lv: lv.depth)
        codes = self._area_codes(levels[smallest])
        return codes if cell is None else codes.model_copy(update={"grid": cell})

    # -- resolution ----------------------------------------------------------------------

    def _reading(self, obs: Observation, arrived_us: int | None) -> ReadingRow:
        first = obs.sensor_ids[0]
        if first.startswith(DATASTREAM_PREFIX):
            stream = first[len(DATASTREAM_PREFIX) :]
            mapped = self._datastreams.get(stream)
            if mapped is None:
                detail = f"Datastream {stream!r} is not in the topology's datastreams"
                raise _Reject(RejectReason.unknown_sensor, detail)
            candidates: tuple[str, ...] = (mapped[0],)
            metric_name = mapped[1]
        else:
            candidates = obs.sensor_ids
            table = obs.metric_table
            if table:
                entry = table.get(obs.metric)
                metric_name = entry[0] if entry is not None else obs.metric
            else:
                metric_name = obs.metric
        source_unit = obs.unit if obs.unit is not None else obs.default_unit
        return self._resolve(
            candidates, metric_name, obs.value, source_unit, obs.observed_at, obs.event_id,
            obs.lat, obs.lon, obs.source_format, arrived_us, optional=obs.optional,
        )  # fmt: skip

    def _resolve(
        self,
        candidates: tuple[str, ...],
        metric_name: str,
        value: float,
        source_unit: str | None,
        observed_at: datetime,
        ident: str | None,
        lat: float | None,
        lon: float | None,
        source_format: str,
        arrived_us: int | None,
        *,
        optional: bool = False,
    ) -> ReadingRow:
        """A parsed measurement resolved against the topology: catalogue name, sensor and
        areas, canonical unit, physical range, time bounds, event id (the one place every
        format's readings go through)."""
        metric = self._metrics.get(metric_name)
        if metric is None:
            if optional:
                raise _Skip
            raise _Reject(RejectReason.unknown_metric, f"{metric_name!r} is not in the catalogue")

        info = None
        for candidate in candidates:
            info = self._sensor(candidate)
            if info is not None:
                break
        if info is not None:
            if metric_name not in info.metrics:
                if optional:
                    raise _Skip
                detail = f"sensor {info.sensor_id!r} is not registered for {metric_name!r}"
                raise _Reject(RejectReason.unknown_metric, detail)
            sensor_id = info.sensor_id
            location: tuple[float, float] | None = info.location
            areas = info.areas
        elif lat is not None and lon is not None:
            sensor_id = candidates[0]
            areas = self._place(lat, lon)
            location = (lat, lon)
        else:
            detail = f"sensor {candidates[0][:80]!r} is not registered and gives no location"
            raise _Reject(RejectReason.unknown_sensor, detail)

        if source_unit is not None and source_unit != metric.unit:
            sf, so, tf, to = self._conversion(metric_name, metric, source_unit)
            value = ((value * sf + so) - to) / tf
        low, high = metric.range
        if not low <= value <= high:
            detail = f"{metric_name}={value:g} {metric.unit} outside [{low:g}, {high:g}]"
            raise _Reject(RejectReason.out_of_range, detail)
        observed_us = self._bounded(to_micros(observed_at), arrived_us)
        if ident is None:
            ident = event_id(sensor_id, metric_name, observed_at.isoformat(), value)
        return ReadingRow(
            ident,
            sensor_id,
            metric_name,
            value,
            metric.unit,
            observed_us,
            areas.district,
            areas.street,
            areas.grid,
            areas.community,
            location[0] if location is not None else None,
            location[1] if location is not None else None,
            source_format,
            arrived_us,
        )

    def _canonical_reading(self, doc: dict[str, Any], arrived_us: int | None) -> ReadingRow | None:
        """The common case, fast: one canonical reading with plain, well-typed fields and
        no location, resolved without the general parser's intermediate objects. None when
        the document is anything else (the general path then gives the same answer)."""
        sensor, metric, value = doc.get("sensor_id"), doc.get("metric"), doc.get("value")
        observed, unit, ident = doc.get("observed_at"), doc.get("unit"), doc.get("event_id")
        if (
            type(sensor) is not str
            or type(metric) is not str
            or type(observed) is not str
            or not 0 < len(sensor) <= MAX_ID_LENGTH
            or not 0 < len(metric) <= MAX_ID_LENGTH
            or not 10 <= len(observed) <= 80
            or "/" in observed
            or (unit is not None and (type(unit) is not str or not 0 < len(unit) <= MAX_ID_LENGTH))
            or (
                ident is not None
                and (type(ident) is not str or not 0 < len(ident) <= MAX_ID_LENGTH)
            )
            or "location" in doc
            or "lat" in doc
            or "lon" in doc
            or "report_id" in doc
        ):
            return None
        if type(value) is int:
            if not -(1 << 53) < value < 1 << 53:
                return None
            value = float(value)
        elif type(value) is not float:
            return None
        try:
            at = datetime.fromisoformat(observed)
        except ValueError:
            return None
        if at.tzinfo is not UTC:
            return None
        return self._resolve(
            (sensor,), metric, value, unit, at, ident, None, None, CANONICAL, arrived_us
        )

    def _canonical_fast(
        self,
        doc: dict[str, Any],
        result: NormalizeResult,
        arrived_us: int | None,
        now: float | None,
    ) -> NormalizeResult | None:
        """`result` for a plain canonical reading, or None to take the general path."""
        try:
            row = self._canonical_reading(doc, arrived_us)
        except _Reject as exc:
            result.format = CANONICAL
            result.rejections.append(Rejection(reason=exc.reason, detail=exc.detail))
            return result
        if row is None:
            return None
        result.format = CANONICAL
        if self.dedup is not None and self.dedup.seen(row.event_id, now):
            result.rejections.append(Rejection(reason=RejectReason.duplicate, detail=row.event_id))
        else:
            result.items.append(row)
        return result

    def _bounded(self, at_us: int, arrived_us: int | None) -> int:
        """`at_us` if it is a time the pipeline believes, else the rejection: before 2000 or
        from 2100 on, later than arrival plus the allowed clock skew, or older than arrival
        minus the maximum age."""
        if at_us >= _LATEST_US or (arrived_us is not None and at_us > arrived_us + self._skew_us):
            limit = (
                _LATEST_US if arrived_us is None else min(_LATEST_US, arrived_us + self._skew_us)
            )
            detail = f"{_stamp(at_us)} is after {_stamp(limit)} (arrival plus max_clock_skew)"
            raise _Reject(RejectReason.clock_skew, detail)
        if at_us < _EARLIEST_US or (arrived_us is not None and at_us < arrived_us - self._age_us):
            limit = (
                _EARLIEST_US if arrived_us is None else max(_EARLIEST_US, arrived_us - self._age_us)
            )
            detail = f"{_stamp(at_us)} is before {_stamp(limit)} (arrival minus max_age)"
            raise _Reject(RejectReason.too_old, detail)
        return at_us

    def _report(self, draft: ReportDraft, arrived_us: int | None) -> CitizenReport:
        category = self._categories.get(draft.category)
        if category is None:
            for name in (draft.category_name, draft.category):
                if name:
                    category = self._category_names.get(name.casefold())
                    if category is not None:
                        break
        if category is None:
            detail = f"report category {draft.category[:80]!r} is not in the topology"
            raise _Reject(RejectReason.unknown_category, detail)
        location = None
        located = draft.lat is not None and draft.lon is not None
        if located and len(self._geo):
            # Boundaries decide where a located report is. Without boundaries (a topology
            # that has none) a named area is the only placement there is, and a report with
            # coordinates only is the city's (its location kept): refusing it as outside the
            # jurisdiction would drop every located report, urgent ones included.
            areas = self._place(draft.lat, draft.lon)  # type: ignore[arg-type]  # located
        elif draft.area is not None:
            if not self.topology.has_area(draft.area):
                detail = f"area {draft.area[:40]!r} is not in the topology"
                raise _Reject(RejectReason.outside_jurisdiction, detail)
            areas = self._area_codes(draft.area)
            if located and self._geo.grid is not None:
                cell = self._geo.grid.cell(draft.lat, draft.lon)  # type: ignore[arg-type]
                areas = areas.model_copy(update={"grid": cell})
        else:
            areas = AdminCodes()
        if located:
            location = GeoPoint(lat=draft.lat, lon=draft.lon)
        description = mask_personal_data(draft.description[:_MAX_DESCRIPTION])
        return CitizenReport(
            report_id=draft.report_id,
            channel=draft.channel,
            category=category.id,
            description=description,
            location=location,
            areas=areas,
            reported_at=from_micros(self._bounded(to_micros(draft.reported_at), arrived_us)),
            urgent=category.urgent or bool(draft.urgent),
            source_format=draft.source_format,
        )

    # -- entry point ---------------------------------------------------------------------

    def normalize(
        self,
        raw: bytes,
        headers: HeadersLike = None,
        *,
        source: str | None = None,
        arrived_us: int | None = None,
        now: float | None = None,
    ) -> NormalizeResult:
        """Turn one raw message into events and rejections; never raises for bad input.

        ``source`` (the raw topic, for details) is informational only; ``arrived_us`` (the
        record's log-append time) bounds the times the events may carry; ``now`` is the
        duplicate filter's clock when the caller read it once for a batch. A bug tripped by
        some input becomes a ``schema_violation`` whose detail starts with "internal error"
        (the fuzz tests assert none occurs) rather than stopping the agent.
        """
        try:
            return self._normalize(raw, headers, source, arrived_us, now)
        except Exception as exc:  # noqa: BLE001 - last resort: a record must never stop the agent
            detail = f"internal error: {type(exc).__name__}: {exc}"[:300]
            rejection = Rejection(reason=RejectReason.schema_violation, detail=detail)
            return NormalizeResult(rejections=[rejection])

    def _normalize(
        self,
        raw: bytes,
        headers: HeadersLike,
        source: str | None,
        arrived_us: int | None,
        now: float | None,
    ) -> NormalizeResult:
        result = NormalizeResult()
        rejections = result.rejections
        if len(raw) > self.max_message_bytes:
            detail = f"{len(raw)} bytes > max_message_bytes {self.max_message_bytes}"
            rejections.append(Rejection(reason=RejectReason.oversized, detail=detail))
            return result
        try:
            fmt = format_from_headers(headers)
        except HeaderError as exc:
            rejections.append(Rejection(reason=RejectReason.unknown_format, detail=str(exc)))
            return result
        try:
            doc: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            detail = f"not JSON: {exc}"[:300]
            rejections.append(Rejection(reason=RejectReason.invalid_json, detail=detail))
            return result
        if fmt is None and type(doc) is dict and "sensor_id" in doc and "metric" in doc:
            fast = self._canonical_fast(doc, result, arrived_us, now)
            if fast is not None:
                return fast
        if fmt is None:
            fmt = detect_format(doc)
        if fmt is None:
            where = f" on {source}" if source else ""
            detail = f"no known format{where}: canonical, NGSI v2/LD, SensorThings or Open311"
            rejections.append(Rejection(reason=RejectReason.unknown_format, detail=detail))
            return result
        result.format = fmt
        parsed = parse_document(doc, fmt)
        result.elements = parsed.elements
        batched = parsed.elements is not None
        for problem in parsed.problems:
            rejections.append(
                Rejection(reason=problem.reason, detail=problem.detail, element=problem.index)
            )
        produced_groups: set[int] = set()
        skipped_groups: set[int] = set()
        items = result.items
        dedup = self.dedup
        for item in parsed.items:
            try:
                event: ReadingRow | CitizenReport
                if isinstance(item, Observation):
                    event = self._reading(item, arrived_us)
                    produced_groups.add(item.group)
                    ident = event.event_id
                else:
                    event = self._report(item, arrived_us)
                    ident = event.report_id
            except _Skip:
                result.skipped += 1
                if isinstance(item, Observation):
                    skipped_groups.add(item.group)
                continue
            except _Reject as exc:
                prefix = f"[{item.group}] " if isinstance(item, Observation) and item.group else ""
                if isinstance(item, Observation):
                    produced_groups.add(item.group)
                element = item.group if batched else None
                rejections.append(
                    Rejection(reason=exc.reason, detail=prefix + exc.detail, element=element)
                )
                continue
            except ValidationError as exc:
                detail = f"invalid event: {exc.errors()[0]['msg']}"[:300]
                rejections.append(Rejection(reason=RejectReason.schema_violation, detail=detail))
                continue
            if dedup is not None and dedup.seen(ident, now):
                rejections.append(Rejection(reason=RejectReason.duplicate, detail=ident))
                continue
            items.append(event)
        for group in sorted(skipped_groups - produced_groups):
            detail = f"[{group}] no attribute maps to a catalogue metric of this sensor"
            rejections.append(Rejection(reason=RejectReason.unknown_metric, detail=detail))
        return result


_NORMALIZERS: dict[int, tuple[Topology, int, Normalizer]] = {}


def normalize(
    raw: bytes,
    headers: HeadersLike = None,
    *,
    topology: Topology,
    source: str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    dedup: DuplicateFilter | None = None,
) -> NormalizeResult:
    """Normalize one raw message against ``topology`` (a cached Normalizer per topology).

    Prefer building one :class:`Normalizer` in long-lived code; this function keeps one
    per topology object (and max size) so the lookups are still built only once.
    """
    key = id(topology)
    cached = _NORMALIZERS.get(key)
    if cached is None or cached[0] is not topology or cached[1] != max_message_bytes:
        if len(_NORMALIZERS) >= 8:
            _NORMALIZERS.clear()
        normalizer = Normalizer(topology, max_message_bytes=max_message_bytes)
        _NORMALIZERS[key] = (topology, max_message_bytes, normalizer)
    else:
        normalizer = cached[2]
    normalizer.dedup = dedup
    return normalizer.normalize(raw, headers, source=source)
