"""A parsed citizen report -> a `CitizenReport` resolved against the topology.

The category by id, else by its name (either language, case-insensitive); the place by
boundaries when the report has coordinates and the topology has boundaries, else by the
area it names, else the city's; the description cut to the limit with personal data
masked; the time bounded by arrival like a reading's.
"""

from __future__ import annotations

from pipeline.aggregates.codec import from_micros, to_micros
from pipeline.ingest.adapters.base import ReportDraft
from pipeline.ingest.lookups import EventTimes, Places, Reject
from pipeline.ingest.pii import mask_personal_data
from pipeline.models import AdminCodes, CitizenReport, GeoPoint, RejectReason
from pipeline.topology import ReportCategory, Topology

__all__ = ["ReportResolver"]

_MAX_DESCRIPTION = 4000


class ReportResolver:
    """Resolve citizen reports for one topology (build once, call per report)."""

    def __init__(self, topology: Topology, places: Places, times: EventTimes) -> None:
        self.topology = topology
        self._places = places
        self._bounded = times.bounded
        self._categories: dict[str, ReportCategory] = {c.id: c for c in topology.report_categories}
        self._category_names: dict[str, ReportCategory] = {}
        for category in topology.report_categories:
            for name in (category.name, category.name_en):
                if name:
                    self._category_names.setdefault(name.casefold(), category)

    def _category(self, draft: ReportDraft) -> ReportCategory:
        category = self._categories.get(draft.category)
        if category is None:
            for name in (draft.category_name, draft.category):
                if name:
                    category = self._category_names.get(name.casefold())
                    if category is not None:
                        break
        if category is None:
            detail = f"report category {draft.category[:80]!r} is not in the topology"
            raise Reject(RejectReason.unknown_category, detail)
        return category

    def _areas(self, draft: ReportDraft) -> AdminCodes:
        if draft.lat is not None and draft.lon is not None and len(self._places.geo):
            # Boundaries decide where a located report is. Without boundaries (a topology
            # that has none) a named area is the only placement there is, and a report with
            # coordinates only is the city's (its location kept): refusing it as outside the
            # jurisdiction would drop every located report, urgent ones included.
            return self._places.place(draft.lat, draft.lon)
        if draft.area is not None:
            if not self.topology.has_area(draft.area):
                detail = f"area {draft.area[:40]!r} is not in the topology"
                raise Reject(RejectReason.outside_jurisdiction, detail)
            return self._places.at(draft.area, draft.lat, draft.lon)
        return AdminCodes()

    def report(self, draft: ReportDraft, arrived_us: int | None) -> CitizenReport:
        """A parsed report as the canonical event; `Reject` when it is refused."""
        category = self._category(draft)
        areas = self._areas(draft)
        location = None
        if draft.lat is not None and draft.lon is not None:
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
