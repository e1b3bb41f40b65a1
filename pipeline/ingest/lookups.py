"""What resolving readings and reports shares: the rejections, time bounds and places.

Why apart: :mod:`pipeline.ingest.readings` and :mod:`pipeline.ingest.reports` both refuse
with a reason, bound event times by arrival and place coordinates in the areas; each
builds these once per topology, so the per-event cost stays a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.aggregates.codec import EPOCH, from_micros, iso, to_micros
from pipeline.ingest.geo import AreaResolver
from pipeline.models import AdminCodes, AreaCodes, AreaLevel, RejectReason
from pipeline.topology import Topology

__all__ = ["EventTimes", "Places", "Reject", "Skip"]

#: Whatever the arrival, event times from 2000 up to (not including) 2100 only.
_EARLIEST_US = 946_684_800_000_000
_LATEST_US = 4_102_444_800_000_000


class Reject(Exception):  # noqa: N818 - internal control flow, never escapes ingest
    """An event refused with a dead-letter reason and a detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Skip(Exception):  # noqa: N818 - internal control flow, never escapes ingest
    """A measurement the source volunteered beside others (an NGSI attribute) that is
    dropped without a rejection: ``metric`` (the catalogue name it maps to) is not in the
    catalogue (``unmapped``), or the registered ``sensor`` is not registered for it."""

    def __init__(self, sensor: str, metric: str, *, unmapped: bool) -> None:
        super().__init__(metric)
        self.sensor = sensor
        self.metric = metric
        self.unmapped = unmapped


def _stamp(micros: int) -> str:
    """An event time for a rejection's detail."""
    return iso(from_micros(micros))


class EventTimes:
    """The event times the pipeline believes, relative to a record's arrival."""

    def __init__(self, topology: Topology) -> None:
        self._skew_us = to_micros(EPOCH + topology.event_time.max_clock_skew)
        self._age_us = to_micros(EPOCH + topology.event_time.max_age)

    def bounded(self, at_us: int, arrived_us: int | None) -> int:
        """`at_us` if it is a time the pipeline believes, else the rejection: before 2000 or
        from 2100 on, later than arrival plus the allowed clock skew, or older than arrival
        minus the maximum age."""
        if at_us >= _LATEST_US or (arrived_us is not None and at_us > arrived_us + self._skew_us):
            limit = (
                _LATEST_US if arrived_us is None else min(_LATEST_US, arrived_us + self._skew_us)
            )
            detail = f"{_stamp(at_us)} is after {_stamp(limit)} (arrival plus max_clock_skew)"
            raise Reject(RejectReason.clock_skew, detail)
        if at_us < _EARLIEST_US or (arrived_us is not None and at_us < arrived_us - self._age_us):
            limit = (
                _EARLIEST_US if arrived_us is None else max(_EARLIEST_US, arrived_us - self._age_us)
            )
            detail = f"{_stamp(at_us)} is before {_stamp(limit)} (arrival minus max_age)"
            raise Reject(RejectReason.too_old, detail)
        return at_us


def _admin_codes(levels: Mapping[AreaLevel, str]) -> AdminCodes:
    return AdminCodes(
        district=levels.get(AreaLevel.district),
        street=levels.get(AreaLevel.street),
        grid=levels.get(AreaLevel.grid),
        community=levels.get(AreaLevel.community),
    )


class Places:
    """Area codes and coordinates -> the admin codes an event carries (cached per code)."""

    def __init__(self, topology: Topology, areas: AreaResolver | None = None) -> None:
        self.topology = topology
        self.geo = areas if areas is not None else AreaResolver(topology)
        self._codes: dict[str, AdminCodes] = {}

    def codes(self, code: str) -> AdminCodes:
        """The admin codes of a known area and its ancestors."""
        found = self._codes.get(code)
        if found is None:
            found = self._codes[code] = _admin_codes(self.topology.admin_codes(code))
        return found

    def place(self, lat: float, lon: float) -> AdminCodes:
        """The admin codes of the smallest boundary that covers the point, else the
        ``outside_jurisdiction`` rejection."""
        levels = self.geo.resolve(lat, lon)
        if levels is None:
            detail = f"({lat:.5f}, {lon:.5f}) is outside every area of {self.topology.id}"
            raise Reject(RejectReason.outside_jurisdiction, detail)
        cell = levels.get(AreaLevel.grid)
        smallest = max((lv for lv in levels if lv != AreaLevel.grid), key=lambda lv: lv.depth)
        codes = self.codes(levels[smallest])
        return codes if cell is None else codes.model_copy(update={"grid": cell})

    def at(self, code: str, lat: float | None, lon: float | None) -> AdminCodes:
        """The admin codes of a known area, with the grid cell of the point when the
        topology has a grid (a registered sensor's cell is where it stands)."""
        codes = self.codes(code)
        cell = self._cell(codes, lat, lon)
        return codes if cell == codes.grid else codes.model_copy(update={"grid": cell})

    def areas_at(self, code: str, lat: float | None, lon: float | None) -> AreaCodes:
        """`at` as plain values (no model: what a reading carries and a cache keeps)."""
        codes = self.codes(code)
        return (codes.district, codes.street, self._cell(codes, lat, lon), codes.community)

    def _cell(self, codes: AdminCodes, lat: float | None, lon: float | None) -> str | None:
        """The point's grid cell when the topology has a grid, else the area's own."""
        grid = self.geo.grid
        return codes.grid if grid is None or lat is None or lon is None else grid.cell(lat, lon)
