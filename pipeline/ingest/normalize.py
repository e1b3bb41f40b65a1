"""Raw bytes -> canonical events (Reading / CitizenReport) and rejections; never raises.

The entry point of ingestion: size, JSON and format checks, then the format's parser
(:mod:`pipeline.ingest.adapters`), then the shared resolution of what it parsed against the
topology: readings in :mod:`pipeline.ingest.readings` (catalogue names, units, range,
sensor registry or coordinates, event ids), reports in :mod:`pipeline.ingest.reports`
(category, place, PII masking), then duplicates. Everything per topology is looked up once
and cached, so the per-event cost stays a few microseconds.

Order of checks (the first failing one names the rejection): size (``oversized``), JSON
(``invalid_json``), format (``unknown_format``), shape (``schema_violation``), metric
(``unknown_metric``), sensor (``unknown_sensor``), place (``outside_jurisdiction``), unit
(``unit_not_convertible``), range (``out_of_range``), category (``unknown_category``),
``duplicate``.

An attribute an entity volunteers beside others (NGSI) that maps to no catalogue metric is
not a rejection (its neighbours go through) but it is not silent either: the result lists
it in ``unmapped``, and the worker counts and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from pipeline.ingest.adapters.base import Observation, ParseOutput, ReportDraft
from pipeline.ingest.adapters.registry import (
    HeaderError,
    HeadersLike,
    detect_format,
    format_from_headers,
    parse_document,
)
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.geo import AreaResolver
from pipeline.ingest.lookups import EventTimes, Places, Reject, Skip
from pipeline.ingest.readings import CANONICAL, ReadingResolver, event_id
from pipeline.ingest.reports import ReportResolver
from pipeline.models import CitizenReport, Reading, ReadingRow, Rejection, RejectReason
from pipeline.topology import Topology

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "NormalizeResult",
    "Normalizer",
    "Unmapped",
    "event_id",
    "normalize",
]

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20


class Unmapped(NamedTuple):
    """A source attribute that maps to no catalogue metric, dropped beside mapped ones."""

    format: str
    sensor: str
    """The registered sensor among the entity's ids, else its first id."""
    attribute: str
    """The attribute's name in the source (``airQualityIndex``)."""
    metric: str
    """The catalogue name it maps to, which the catalogue lacks (``aqi``)."""


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
    unmapped: list[Unmapped] | None = None
    """Those of the skipped that map to no catalogue metric (None: none)."""

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
        places = Places(topology, areas)
        times = EventTimes(topology)
        self._readings = ReadingResolver(topology, places, times)
        self._reports = ReportResolver(topology, places, times)

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

    def fast_reading(
        self, raw: bytes, headers: HeadersLike, arrived_us: int | None, now: float | None
    ) -> ReadingRow | Rejection | None:
        """The common case, without a result object: a message that is one plain
        canonical reading and names no format: its row, or its rejection. None for
        anything else, which `normalize` then answers in full (the same answer).

        Why: a batch of such messages is most of what the raw intake reads, and a
        `NormalizeResult` per message was a fifth of normalizing one."""
        if headers or len(raw) > self.max_message_bytes:
            return None
        try:
            doc = orjson.loads(raw)
            if type(doc) is not dict or "sensor_id" not in doc or "metric" not in doc:
                return None
            return self._canonical_answer(doc, arrived_us, now)
        except Exception:  # noqa: BLE001 - bad JSON or a bug: `normalize` gives the answer
            return None

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
        for problem in parsed.problems:
            rejections.append(
                Rejection(reason=problem.reason, detail=problem.detail, element=problem.index)
            )
        self._resolve_items(parsed, result, arrived_us, now)
        return result

    def _canonical_fast(
        self,
        doc: dict[str, Any],
        result: NormalizeResult,
        arrived_us: int | None,
        now: float | None,
    ) -> NormalizeResult | None:
        """`result` for a plain canonical reading, or None to take the general path."""
        answer = self._canonical_answer(doc, arrived_us, now)
        if answer is None:
            return None
        result.format = CANONICAL
        if isinstance(answer, Rejection):
            result.rejections.append(answer)
        else:
            result.items.append(answer)
        return result

    def _canonical_answer(
        self, doc: dict[str, Any], arrived_us: int | None, now: float | None
    ) -> ReadingRow | Rejection | None:
        """A plain canonical reading's row, or its rejection (a duplicate included); None
        when `doc` is not one (the general parser then answers)."""
        try:
            row = self._readings.canonical(doc, arrived_us)
        except Reject as exc:
            return Rejection(reason=exc.reason, detail=exc.detail)
        if row is not None and self.dedup is not None and self.dedup.seen(row.event_id, now):
            return Rejection(reason=RejectReason.duplicate, detail=row.event_id)
        return row

    def _resolve_items(
        self,
        parsed: ParseOutput,
        result: NormalizeResult,
        arrived_us: int | None,
        now: float | None,
    ) -> None:
        """Every parsed item resolved into `result`: an event, a rejection or a skip; an
        entity none of whose attributes gave a reading or a rejection is `unknown_metric`."""
        batched = parsed.elements is not None
        produced_groups: set[int] = set()
        skipped_groups: set[int] = set()
        rejections, items, dedup = result.rejections, result.items, self.dedup
        for item in parsed.items:
            try:
                event: ReadingRow | CitizenReport
                if isinstance(item, Observation):
                    event = self._readings.reading(item, arrived_us)
                    produced_groups.add(item.group)
                    ident = event.event_id
                else:
                    event = self._reports.report(item, arrived_us)
                    ident = event.report_id
            except Skip as skip:  # only readings skip
                _skipped(item, skip, result)
                skipped_groups.add(item.group)
                continue
            except Reject as exc:
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


def _skipped(item: Observation | ReportDraft, skip: Skip, result: NormalizeResult) -> None:
    """Count a skipped attribute; list it when it maps to no catalogue metric."""
    result.skipped += 1
    if skip.unmapped and isinstance(item, Observation):
        unmapped = Unmapped(item.source_format, skip.sensor, item.metric, skip.metric)
        if result.unmapped is None:
            result.unmapped = [unmapped]
        else:
            result.unmapped.append(unmapped)


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
