"""The incident lifecycle: every transition (valid and invalid), authority, detection
merges, SLA escalation step by step, and routing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from pipeline.rules.incidents import (
    REOPEN_WINDOW,
    TRANSITIONS,
    IncidentEvent,
    Transition,
    apply,
    apply_detection,
    check_sla,
    new_incident,
    route,
)
from tests.unit.rules.detect_world import (
    CITY,
    HUANGPU,
    NANJING_EAST,
    T0,
    TIANPING,
    WAITAN,
    XUHUI,
    topology,
)

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


def ok(result: Transition | Rejection) -> Transition:
    assert isinstance(result, Transition), result
    return result


def rejected(result: Transition | Rejection, reason: RejectReason) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    return result


# --------------------------------------------------------------------------- open


def test_new_incident_owner_and_deadlines() -> None:
    inc = make()
    assert (inc.state, inc.version, inc.escalations) == (S.open, 1, 0)
    assert (inc.owner_level, inc.owner_area) == ("street", NANJING_EAST)
    assert inc.ack_due == T0 + timedelta(hours=2) and inc.resolve_due == T0 + timedelta(hours=24)
    district = make(Severity.red, AdminCodes(district=XUHUI))
    assert (district.owner_level, district.owner_area) == ("district", XUHUI)
    assert district.ack_due == T0 + timedelta(minutes=15)
    city = make(areas=AdminCodes())
    assert (city.owner_level, city.owner_area) == ("city", CITY)


# --------------------------------------------------------------------------- unit actions

VALID = [
    (A.dispatch, S.open, S.dispatched),
    (A.acknowledge, S.open, S.acknowledged),
    (A.acknowledge, S.dispatched, S.acknowledged),
    (A.resolve, S.acknowledged, S.resolved),
    (A.close, S.resolved, S.closed),
    (A.reopen, S.resolved, S.open),
    (A.reopen, S.closed, S.open),
    (A.comment, S.open, S.open),
    (A.comment, S.dispatched, S.dispatched),
    (A.comment, S.acknowledged, S.acknowledged),
    (A.comment, S.resolved, S.resolved),
]


def test_the_valid_table_is_the_whole_table() -> None:
    table = {(a, f, t) for a, row in TRANSITIONS.items() for f, t in row.items()}
    assert table == set(VALID)


@pytest.mark.parametrize(("action", "before", "after"), VALID)
def test_valid_transition(action: A, before: S, after: S) -> None:
    inc = make(state=before)
    t = ok(apply(inc, upd(action, 7, note="on it"), TOPO))
    assert (t.from_state, t.to_state, t.incident.state) == (before, after, after)
    assert (t.action, t.actor, t.reason) == (action, STREET_UNIT, "on it")
    assert t.at == T0 + timedelta(minutes=7)
    assert t.incident.version == inc.version + 1
    assert t.incident.updated_at == T0 + timedelta(minutes=7)
    assert t.incident.evidence == inc.evidence and t.incident.severity == inc.severity


INVALID = [
    (a, s)
    for a in (A.dispatch, A.acknowledge, A.resolve, A.close, A.reopen, A.comment)
    for s in S
    if s not in TRANSITIONS[a]
]


@pytest.mark.parametrize(("action", "before"), INVALID)
def test_invalid_transition(action: A, before: S) -> None:
    inc = make(state=before)
    result = rejected(apply(inc, upd(action), TOPO), RejectReason.invalid_transition)
    assert str(before) in result.detail


def test_invalid_examples_from_the_issue() -> None:
    assert (A.close, S.open) in INVALID and (A.close, S.acknowledged) in INVALID
    assert (A.resolve, S.open) in INVALID and (A.comment, S.closed) in INVALID


def test_system_actions_are_not_unit_actions() -> None:
    for action in (A.auto_resolve, A.escalate, A.open, A.upgrade, A.evidence):
        rejected(apply(make(), upd(action), TOPO), RejectReason.invalid_transition)


def test_reopen_of_closed_only_within_the_window_and_restarts_deadlines() -> None:
    closed = make(state=S.closed).model_copy(update={"updated_at": T0 + timedelta(hours=1)})
    within = T0 + timedelta(hours=1) + REOPEN_WINDOW
    t = ok(apply(closed, upd(A.reopen, (within - T0).total_seconds() / 60), TOPO))
    assert t.incident.ack_due == within + timedelta(hours=2)
    assert t.incident.resolve_due == within + timedelta(hours=24)
    late = (within - T0).total_seconds() / 60 + 1
    rejected(apply(closed, upd(A.reopen, late), TOPO), RejectReason.invalid_transition)


@pytest.mark.parametrize(
    ("unit", "allowed"),
    [
        (NANJING_EAST, True),
        (STREET_UNIT, True),
        (f"{HUANGPU}/environment", True),
        (CITY, True),
        (WAITAN, False),  # a sibling street
        (XUHUI, False),  # another district
        (f"{TIANPING}/x", False),
        ("999999", False),  # unknown to the topology
    ],
)
def test_authority_is_the_incident_area_or_an_ancestor(unit: str, allowed: bool) -> None:
    result = apply(make(), upd(A.acknowledge, unit=unit), TOPO)
    if allowed:
        assert ok(result).actor == unit
    else:
        detail = rejected(result, RejectReason.unit_outside_area).detail
        assert unit in detail


def test_update_for_another_incident_is_unknown() -> None:
    rejected(
        apply(make(), upd(A.acknowledge, incident_id="inc-other"), TOPO),
        RejectReason.unknown_incident,
    )


def test_full_lifecycle_bumps_version_each_step() -> None:
    inc = make()
    for action in (A.dispatch, A.comment, A.acknowledge, A.resolve, A.close):
        inc = ok(apply(inc, upd(action, inc.version), TOPO)).incident
    assert (inc.state, inc.version) == (S.closed, 6)


# --------------------------------------------------------------------------- detection


def detected(
    action: A,
    count: int,
    severity: Severity = Severity.yellow,
    minutes: float = 10,
    state: S = S.open,
) -> IncidentEvent:
    seen = make(severity, count=count)
    at = T0 + timedelta(minutes=minutes)
    seen = seen.model_copy(
        update={
            "updated_at": at,
            "evidence": seen.evidence.model_copy(
                update={"count": count, "last_at": at, "peak_value": 200.0}
            ),
        }
    )
    return IncidentEvent(action=action, incident=seen)


def test_detection_open_and_duplicate_open() -> None:
    event = detected(A.open, 3, minutes=0)
    t = ok(apply_detection(None, event, TOPO))
    assert (t.action, t.from_state, t.to_state, t.actor) == (A.open, None, S.open, "system")
    assert t.incident == event.incident
    rejected(apply_detection(t.incident, event, TOPO), RejectReason.duplicate)


def test_detection_evidence_keeps_the_lifecycle_state() -> None:
    acked = make(state=S.acknowledged).model_copy(update={"version": 3})
    t = ok(apply_detection(acked, detected(A.evidence, 4), TOPO))
    assert (t.action, t.from_state, t.to_state) == (A.evidence, S.acknowledged, S.acknowledged)
    assert t.incident.state == S.acknowledged and t.incident.version == 4
    assert (t.incident.evidence.count, t.incident.evidence.peak_value) == (4, 200.0)
    rejected(apply_detection(t.incident, detected(A.evidence, 4), TOPO), RejectReason.duplicate)
    rejected(apply_detection(None, detected(A.evidence, 5), TOPO), RejectReason.unknown_incident)
    closed = make(state=S.closed)
    rejected(
        apply_detection(closed, detected(A.evidence, 9), TOPO), RejectReason.invalid_transition
    )


def test_detection_upgrade_tightens_deadlines_never_relaxes() -> None:
    inc = make(Severity.yellow)  # ack due T0+2h, resolve due T0+24h
    t = ok(apply_detection(inc, detected(A.upgrade, 4, Severity.red, minutes=10), TOPO))
    assert (t.action, t.incident.severity, t.reason) == (A.upgrade, Severity.red, "yellow -> red")
    assert t.incident.ack_due == T0 + timedelta(minutes=25)
    assert t.incident.resolve_due == T0 + timedelta(hours=4, minutes=10)
    # An upgrade late in the incident's life keeps the earlier, tighter deadlines.
    t2 = ok(apply_detection(inc, detected(A.upgrade, 4, Severity.orange, minutes=200), TOPO))
    assert t2.incident.ack_due == inc.ack_due
    assert t2.incident.resolve_due == T0 + timedelta(minutes=200, hours=8)


@pytest.mark.parametrize("before", [S.open, S.dispatched, S.acknowledged])
def test_auto_resolve_from_any_unresolved_state(before: S) -> None:
    t = ok(apply_detection(make(state=before), detected(A.auto_resolve, 3), TOPO))
    assert (t.action, t.from_state, t.to_state) == (A.auto_resolve, before, S.resolved)
    assert t.incident.updated_at == T0 + timedelta(minutes=10)


@pytest.mark.parametrize("before", [S.resolved, S.closed])
def test_auto_resolve_of_a_resolved_incident_is_rejected(before: S) -> None:
    rejected(
        apply_detection(make(state=before), detected(A.auto_resolve, 3), TOPO),
        RejectReason.invalid_transition,
    )


# --------------------------------------------------------------------------- SLA


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_no_escalation_before_the_deadline() -> None:
    inc = make()
    assert check_sla(inc, inc.ack_due, TOPO) == []


def test_ack_overdue_escalates_street_district_city_and_stops() -> None:
    inc = make()  # yellow: ack 2h, resolve 24h; owner street
    [t] = check_sla(inc, at(2.5), TOPO)
    e1 = t.incident
    assert (t.action, t.actor, t.from_state, t.to_state) == (A.escalate, "system", S.open, S.open)
    assert (e1.owner_level, e1.owner_area, e1.escalations) == ("district", HUANGPU, 1)
    assert (e1.ack_due, e1.resolve_due) == (at(4.5), at(26.5))
    assert e1.version == inc.version + 1 and e1.updated_at == at(2.5)
    assert t.reason is not None and "ack overdue" in t.reason
    assert check_sla(e1, at(4.5), TOPO) == []  # not yet overdue at the district
    [t2] = check_sla(e1, at(5), TOPO)
    e2 = t2.incident
    assert (e2.owner_level, e2.owner_area, e2.escalations) == ("city", CITY, 2)
    assert check_sla(e2, at(100), TOPO) == []  # top level reached
    assert route(e2, TOPO) == route(inc, TOPO)


def test_resolve_overdue_escalates_an_acknowledged_incident() -> None:
    inc = make(state=S.acknowledged)
    assert check_sla(inc, at(3), TOPO) == []  # acknowledged: the ack deadline no longer counts
    [t] = check_sla(inc, at(25), TOPO)
    assert t.reason is not None and "resolve overdue" in t.reason
    assert t.incident.owner_level == "district"


@pytest.mark.parametrize("state", [S.resolved, S.closed])
def test_resolved_incidents_do_not_escalate(state: S) -> None:
    assert check_sla(make(state=state), at(1000), TOPO) == []


def test_escalation_respects_top_level_and_enabled() -> None:
    district_top = topology(escalation={"enabled": True, "top_level": "district"})
    inc = make()
    [t] = check_sla(inc, at(3), district_top)
    assert t.incident.owner_level == "district"
    assert check_sla(t.incident, at(100), district_top) == []
    off = topology(escalation={"enabled": False, "top_level": "city"})
    assert check_sla(inc, at(100), off) == []


def test_district_owned_incident_goes_straight_to_city() -> None:
    inc = make(Severity.red, AdminCodes(district=XUHUI))
    [t] = check_sla(inc, T0 + timedelta(minutes=16), TOPO)
    assert (t.incident.owner_level, t.incident.owner_area) == ("city", CITY)


# --------------------------------------------------------------------------- routing


def test_route_to_city_district_and_street_topics() -> None:
    assert route(make(), TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{HUANGPU}",
        f"cityops.test.incidents.street.{NANJING_EAST}",
    ]
    assert route(make(areas=AdminCodes(district=XUHUI)), TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{XUHUI}",
    ]
    assert route(make(areas=AdminCodes()), TOPO) == ["cityops.test.incidents.city"]
    unknown = make(areas=AdminCodes(district=HUANGPU, street="310101999"))
    assert route(unknown, TOPO) == [
        "cityops.test.incidents.city",
        f"cityops.test.incidents.district.{HUANGPU}",
    ]


UNIT_ACTIONS = [A.dispatch, A.acknowledge, A.resolve, A.close, A.reopen, A.comment]
UNITS = [NANJING_EAST, HUANGPU, CITY, WAITAN, XUHUI]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(UNIT_ACTIONS), st.sampled_from(UNITS), st.integers(1, 2000)),
        max_size=25,
    )
)
def test_any_update_sequence_follows_the_table(steps: list[tuple[A, str, int]]) -> None:
    allowed = {(a, f): t for a, f, t in VALID}
    authorised = {NANJING_EAST, HUANGPU, CITY}
    inc = make()
    minutes = 0
    accepted = 0
    closed_at = None
    for action, unit, gap in steps:
        minutes += gap
        result = apply(inc, upd(action, minutes, unit=unit), TOPO)
        now = T0 + timedelta(minutes=minutes)
        if unit not in authorised:
            rejected(result, RejectReason.unit_outside_area)
            continue
        expected = allowed.get((action, inc.state))
        if action == A.reopen and inc.state == S.closed:
            assert closed_at is not None
            if now - closed_at > REOPEN_WINDOW:
                expected = None
        if expected is None:
            rejected(result, RejectReason.invalid_transition)
            continue
        t = ok(result)
        accepted += 1
        assert t.incident.state == expected and t.incident.last_action == action
        assert t.incident.version == inc.version + 1 == accepted + 1
        if expected == S.closed:
            closed_at = now
        inc = t.incident


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Severity)),
    st.sampled_from([S.open, S.dispatched, S.acknowledged]),
    st.lists(st.integers(1, 60 * 30), min_size=1, max_size=30),
)
def test_sla_ticks_escalate_one_level_at_a_time_up_to_the_top(
    severity: Severity, state: S, gaps: list[int]
) -> None:
    inc = make(severity, state=state)
    depth = {"street": 2, "district": 1, "city": 0}
    now = T0
    for gap in gaps:
        now += timedelta(minutes=gap)
        out = check_sla(inc, now, TOPO)
        assert len(out) <= 1
        if not out:
            continue
        new = out[0].incident
        assert depth[new.owner_level] == depth[inc.owner_level] - 1
        assert new.escalations == inc.escalations + 1 and new.state == inc.state
        assert new.ack_due is not None and new.ack_due > now
        inc = new
    assert inc.escalations <= 2
