"""A handful of incidents and unit updates of the test city, shared by the lifecycle, SLA,
routing and audit tests."""

from __future__ import annotations

from datetime import timedelta

from pipeline.models import (
    AdminCodes,
    Evidence,
    Incident,
    IncidentAction,
    IncidentKind,
    IncidentState,
    IncidentUpdate,
    Rejection,
    RejectReason,
    Severity,
)
from pipeline.rules.lifecycle import Transition, new_incident
from tests.unit.rules.detect_world import HUANGPU, NANJING_EAST, T0, topology

A = IncidentAction
S = IncidentState
TOPO = topology()
STREET_UNIT = f"{NANJING_EAST}/urban-management"


def make(
    severity: Severity = Severity.yellow,
    areas: AdminCodes | None = None,
    state: S = S.open,
    count: int = 3,
) -> Incident:
    inc = new_incident(
        incident_id="inc-0123456789abcdef",
        rule_id="pm25-count",
        kind=IncidentKind.threshold_breach,
        severity=severity,
        subject="aq-1",
        subject_kind="sensor",
        metric="pm25",
        category=None,
        evidence=Evidence(
            event_ids=["e1", "e2", "e3"],
            peak_value=120.0,
            threshold=115.0,
            first_at=T0,
            last_at=T0,
            count=count,
        ),
        areas=areas or AdminCodes(district=HUANGPU, street=NANJING_EAST),
        opened_at=T0,
        topology=TOPO,
    )
    return inc.model_copy(update={"state": state})


def upd(
    action: A,
    minutes: float = 5,
    unit: str = STREET_UNIT,
    note: str | None = None,
    incident_id: str = "inc-0123456789abcdef",
) -> IncidentUpdate:
    return IncidentUpdate(
        update_id=f"u-{action}-{minutes}",
        incident_id=incident_id,
        action=action,
        unit=unit,
        at=T0 + timedelta(minutes=minutes),
        note=note,
    )


def ok(result: Transition | Rejection | None) -> Transition:
    assert isinstance(result, Transition), result
    return result


def rejected(result: Transition | Rejection | None, reason: RejectReason) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    return result
