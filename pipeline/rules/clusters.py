"""Citizen-report rules: urgent reports and spatial-temporal clusters, as a pure step.

Why a separate module from :mod:`pipeline.rules.detection`: reports are points in space and time,
not values against thresholds; the state is a per-category set of recent reports and
open clusters. State is keyed by category (:func:`state_key`), so workers partitioned by
category emit exactly what one worker would.

Semantics:
- **Urgent.** A report whose category is urgent (or that flags itself ``urgent``, when the
  category's ``honour_urgent_flag`` allows, the default) opens an ``urgent_report``
  incident at once, id from (category, report id).
- **Cluster.** Otherwise, with a ``cluster: {count, radius_m, window}`` rule: a report
  within ``radius_m`` (haversine) of an open cluster's centre, and within ``window`` of the
  cluster's reports in time, attaches to the nearest such cluster as evidence (``evidence``
  event). Else it waits among the pending reports; when it and the pending reports within
  ``radius_m`` of it and within ``window`` of its time number ``count`` or more, they
  open one ``report_cluster`` incident whose centre is their mean position and whose id is
  derived from (category, the earliest member's time and report id). A cluster accepts
  reports until ``window`` after its latest one; after that a new cluster may form there.
- Reports without a location cannot be clustered (counted in ``state.unlocated``); a
  report id seen within the retention horizon is a replay and is ignored. Reports older
  than (latest report time - window - allowed lateness) are late (``state.late``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.aggregates.codec import iso as _iso
from pipeline.aggregates.codec import parse_iso as _parse
from pipeline.models import (
    AdminCodes,
    CitizenReport,
    Evidence,
    Incident,
    IncidentAction,
    IncidentKind,
)
from pipeline.rules.lifecycle import MAX_EVENT_IDS, IncidentEvent, incident_id, new_incident
from pipeline.topology import ClusterRule, ReportCategory, Topology

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def state_key(report: CitizenReport) -> str:
    """The table key of the state a report belongs to: its category."""
    return report.category


@dataclass(slots=True)
class Pending:
    """A located report not (yet) in a cluster."""

    report_id: str
    at: datetime
    lat: float
    lon: float
    areas: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "report_id": self.report_id,
            "at": _iso(self.at),
            "lat": self.lat,
            "lon": self.lon,
            "areas": dict(self.areas),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pending:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["report_id"]),
            _parse(data["at"]),
            float(data["lat"]),
            float(data["lon"]),
            {str(k): str(v) for k, v in data["areas"].items()},
        )


@dataclass(slots=True)
class Cluster:
    """An open cluster: its fixed centre and the incident as detection sees it."""

    lat: float
    lon: float
    incident: Incident

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"lat": self.lat, "lon": self.lon, "incident": self.incident.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cluster:
        """Inverse of :meth:`to_dict`."""
        return cls(
            float(data["lat"]), float(data["lon"]), Incident.model_validate(data["incident"])
        )


@dataclass(slots=True)
class ClusterState:
    """Everything one category remembers; the worker persists ``to_dict()`` under
    :func:`state_key`."""

    category: str
    max_seen: datetime | None = None
    pending: list[Pending] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    recent: dict[str, datetime] = field(default_factory=dict)
    late: int = 0
    unlocated: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot."""
        return {
            "category": self.category,
            "max_seen": None if self.max_seen is None else _iso(self.max_seen),
            "pending": [p.to_dict() for p in self.pending],
            "clusters": [c.to_dict() for c in self.clusters],
            "recent": {k: _iso(v) for k, v in sorted(self.recent.items())},
            "late": self.late,
            "unlocated": self.unlocated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            category=str(data["category"]),
            max_seen=None if data.get("max_seen") is None else _parse(data["max_seen"]),
            pending=[Pending.from_dict(p) for p in data.get("pending", [])],
            clusters=[Cluster.from_dict(c) for c in data.get("clusters", [])],
            recent={str(k): _parse(v) for k, v in data.get("recent", {}).items()},
            late=int(data.get("late", 0)),
            unlocated=int(data.get("unlocated", 0)),
        )


def _areas(report: CitizenReport) -> dict[str, str]:
    dumped = report.areas.model_dump(exclude_none=True, exclude={"schema_version"})
    return {str(k): str(v) for k, v in dumped.items()}


def step(
    state: ClusterState, report: CitizenReport, topology: Topology
) -> tuple[ClusterState, list[IncidentEvent]]:
    """Feed one report of this state's category; return the state (updated in place) and
    the incident events (``open`` of an urgent or cluster incident, or ``evidence``)."""
    if report.category != state.category:
        return state, []
    category = topology.report_category(report.category)
    if category is None:
        return state, []
    at = report.reported_at.astimezone(UTC)
    if report.report_id in state.recent:
        return state, []
    if category.urgent or (report.urgent and category.honour_urgent_flag):
        state.recent[report.report_id] = at
        return state, [_urgent(report, category, at, topology)]
    rule = category.cluster
    if rule is None:
        return state, []
    if report.location is None:
        state.unlocated += 1
        return state, []
    window: timedelta = rule.window
    horizon = window + topology.detection_lateness
    if state.max_seen is not None and at < state.max_seen - horizon:
        state.late += 1
        return state, []
    state.max_seen = at if state.max_seen is None else max(state.max_seen, at)
    _prune(state, state.max_seen - horizon, window)
    state.recent[report.report_id] = at
    lat, lon = report.location.lat, report.location.lon
    cluster = _nearest_cluster(state, lat, lon, at, rule)
    if cluster is not None:
        return state, [_attach(cluster, report.report_id, at)]
    here = Pending(report.report_id, at, lat, lon, _areas(report))
    opened = _form_cluster(state, report, category, rule, here, topology)
    return state, [] if opened is None else [opened]


def _nearest_cluster(
    state: ClusterState, lat: float, lon: float, at: datetime, rule: ClusterRule
) -> Cluster | None:
    """The open cluster nearest to (lat, lon) that a report at ``at`` may join, if any."""
    window: timedelta = rule.window
    best: tuple[float, int] | None = None
    for index, cluster in enumerate(state.clusters):
        ev = cluster.incident.evidence
        if not ev.first_at - window <= at <= ev.last_at + window:
            continue
        distance = haversine_m(lat, lon, cluster.lat, cluster.lon)
        if distance <= rule.radius_m and (best is None or distance < best[0]):
            best = (distance, index)
    return None if best is None else state.clusters[best[1]]


def _attach(cluster: Cluster, report_id: str, at: datetime) -> IncidentEvent:
    """Add a report to an open cluster's evidence (updated in place); its ``evidence`` event."""
    ev = cluster.incident.evidence
    ids = list(ev.event_ids)
    if len(ids) < MAX_EVENT_IDS:
        ids.append(report_id)
    evidence = ev.model_copy(
        update={
            "event_ids": tuple(ids),
            "first_at": min(ev.first_at, at),
            "last_at": max(ev.last_at, at),
            "count": ev.count + 1,
            "peak_value": float(ev.count + 1),
        }
    )
    cluster.incident = cluster.incident.model_copy(
        update={
            "evidence": evidence,
            "updated_at": max(cluster.incident.updated_at, at),
            "last_action": IncidentAction.evidence,
        }
    )
    return IncidentEvent(IncidentAction.evidence, cluster.incident)


def _form_cluster(
    state: ClusterState,
    report: CitizenReport,
    category: ReportCategory,
    rule: ClusterRule,
    here: Pending,
    topology: Topology,
) -> IncidentEvent | None:
    """Open a cluster when ``here`` and the pending reports near it number ``rule.count``
    (its ``open`` event); else keep ``here`` pending (None)."""
    window: timedelta = rule.window
    members = [
        p
        for p in state.pending
        if abs(p.at - here.at) <= window
        and haversine_m(here.lat, here.lon, p.lat, p.lon) <= rule.radius_m
    ]
    members.append(here)
    if len(members) < rule.count:
        state.pending.append(here)
        return None
    members.sort(key=lambda p: (p.at, p.report_id))
    member_ids = {p.report_id for p in members}
    state.pending = [p for p in state.pending if p.report_id not in member_ids]
    first = members[0]
    centre_lat = math.fsum(p.lat for p in members) / len(members)
    centre_lon = math.fsum(p.lon for p in members) / len(members)
    incident = new_incident(
        incident_id=incident_id("cluster", report.category, _iso(first.at), first.report_id),
        rule_id=report.category,
        kind=IncidentKind.report_cluster,
        severity=category.severity,
        subject=f"{report.category}@{centre_lat:.5f},{centre_lon:.5f}",
        subject_kind="area",
        metric=None,
        category=report.category,
        evidence=Evidence(
            event_ids=tuple(p.report_id for p in members[:MAX_EVENT_IDS]),
            peak_value=float(len(members)),
            threshold=float(rule.count),
            first_at=first.at,
            last_at=members[-1].at,
            count=len(members),
        ),
        areas=AdminCodes(**first.areas),
        opened_at=here.at,
        topology=topology,
    )
    state.clusters.append(Cluster(centre_lat, centre_lon, incident))
    return IncidentEvent(IncidentAction.open, incident)


def _prune(state: ClusterState, horizon: datetime, window: timedelta) -> None:
    """Forget reports and clusters that nothing on time can reach any more."""
    state.pending = [p for p in state.pending if p.at >= horizon]
    state.clusters = [c for c in state.clusters if c.incident.evidence.last_at + window >= horizon]
    state.recent = {k: v for k, v in state.recent.items() if v >= horizon}


def _urgent(
    report: CitizenReport, category: ReportCategory, at: datetime, topology: Topology
) -> IncidentEvent:
    incident = new_incident(
        incident_id=incident_id("urgent", report.category, report.report_id),
        rule_id=report.category,
        kind=IncidentKind.urgent_report,
        severity=category.severity,
        subject=report.report_id,
        subject_kind="area",
        metric=None,
        category=report.category,
        evidence=Evidence(
            event_ids=(report.report_id,),
            peak_value=1.0,
            threshold=1.0,
            first_at=at,
            last_at=at,
            count=1,
        ),
        areas=report.areas,
        opened_at=at,
        topology=topology,
    )
    return IncidentEvent(IncidentAction.open, incident)
