"""Driving threshold rules in the detection tests: one rule of the test city, run end to end."""

from __future__ import annotations

from datetime import timedelta

from pipeline.models import IncidentAction, Reading, Severity
from pipeline.rules.detection import Detector
from pipeline.rules.lifecycle import IncidentEvent
from tests.unit.rules.detect_world import BASE, T0, topology

A = IncidentAction


def only(rule_id: str) -> dict[str, object]:
    """Override that keeps just one rule of the test city."""
    return {"rules": [r for r in BASE["rules"] if r["id"] == rule_id]}


def run(
    readings: list[Reading], rule_id: str = "pm25-count", lateness: int = 0, flush: bool = False
) -> list[IncidentEvent]:
    topo = topology(**only(rule_id), aggregation={**_agg(), "allowed_lateness": f"{lateness}s"})
    detector = Detector(topo)
    events = detector.run(readings)
    if flush:
        events += detector.advance(T0 + timedelta(days=1))
    return events


def _agg() -> dict[str, object]:
    return dict(BASE["aggregation"])


def actions(events: list[IncidentEvent]) -> list[tuple[IncidentAction, Severity]]:
    return [(e.action, e.incident.severity) for e in events]
