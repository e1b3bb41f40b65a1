"""The incident lifecycle: every transition (valid and invalid), authority and detection
merges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.models import (
    AdminCodes,
    CitizenReport,
    Incident,
    IncidentLocation,
    Reading,
    RejectReason,
    Severity,
)
from pipeline.rules.lifecycle import (
    TRANSITIONS,
    IncidentEvent,
    apply,
    apply_detection,
    incident_id,
)
from tests.unit.rules.detect_world import CITY, HUANGPU, NANJING_EAST, T0, TIANPING, WAITAN, XUHUI
from tests.unit.rules.incident_world import STREET_UNIT, TOPO, A, S, make, ok, rejected, upd
from tests.unit.rules.streams import TOPO_NOW, pm25_series, report_series, run_keyed, run_reports

REOPEN_WINDOW = TOPO.incidents.reopen_window

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


def test_incident_id_is_blake2b_of_its_parts() -> None:
    import hashlib

    expected = hashlib.blake2b(b"r\x1fs\x1f2026", digest_size=8).hexdigest()
    assert incident_id("r", "s", "2026") == "inc-" + expected
    assert incident_id("r", "s", "2026") != incident_id("r", "s2", "026")


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
        with pytest.raises(ValidationError, match="action"):
            upd(action)
        forged = upd(A.comment).model_copy(update={"action": action})
        rejected(apply(make(), forged, TOPO), RejectReason.invalid_transition)


def test_a_unit_update_takes_effect_at_its_receive_time_not_its_own() -> None:
    update = upd(A.acknowledge, 5)  # the sender claims T0 + 5 min
    received = T0 + timedelta(minutes=9)
    t = ok(apply(make(), update, TOPO, received_at=received))
    assert t.at == received and t.incident.updated_at == received
    assert (t.update_id, t.sent_at) == (update.update_id, update.at)


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
    # The lifecycle places it: the sensor's registered location.
    where = IncidentLocation(lat=31.2365, lon=121.4790, basis="sensor")
    assert t.incident == event.incident.model_copy(update={"location": where})
    rejected(apply_detection(t.incident, event, TOPO), RejectReason.duplicate)


def test_detection_evidence_keeps_the_lifecycle_state() -> None:
    acked = make(state=S.acknowledged).model_copy(update={"version": 3})
    t = ok(apply_detection(acked, detected(A.evidence, 4), TOPO))
    assert (t.action, t.from_state, t.to_state) == (A.evidence, S.acknowledged, S.acknowledged)
    assert t.incident.state == S.acknowledged and t.incident.version == 4
    assert (t.incident.evidence.count, t.incident.evidence.peak_value) == (4, 200.0)
    rejected(apply_detection(t.incident, detected(A.evidence, 4), TOPO), RejectReason.duplicate)
    rejected(apply_detection(None, detected(A.evidence, 5), TOPO), RejectReason.unknown_incident)


def test_same_severity_evidence_is_kept_when_resolved_and_ignored_when_closed() -> None:
    resolved = make(state=S.resolved)
    t = ok(apply_detection(resolved, detected(A.evidence, 9), TOPO))
    assert (t.action, t.incident.state, t.incident.evidence.count) == (A.evidence, S.resolved, 9)
    assert apply_detection(make(state=S.closed), detected(A.evidence, 9), TOPO) is None


@pytest.mark.parametrize("before", [S.resolved, S.closed])
def test_a_worsening_incident_a_unit_resolved_reopens(before: S) -> None:
    done = make(Severity.yellow, state=before)
    t = ok(apply_detection(done, detected(A.upgrade, 9, Severity.red, minutes=30), TOPO))
    at = T0 + timedelta(minutes=30)
    assert (t.action, t.actor, t.from_state, t.to_state) == (A.reopen, "system", before, S.open)
    assert (t.incident.state, t.incident.severity, t.incident.reopened) == (S.open, "red", 1)
    assert t.incident.last_action == A.reopen and t.incident.evidence.count == 9
    assert t.incident.ack_due == at + timedelta(minutes=15)
    assert t.reason == f"worsened after it was {before}: yellow -> red"


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
def test_auto_resolve_of_a_resolved_incident_changes_nothing(before: S) -> None:
    assert apply_detection(make(state=before), detected(A.auto_resolve, 3), TOPO) is None


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


@settings(max_examples=60, deadline=None)
@given(pm25_series(), report_series())
def test_events_survive_the_wire_as_plain_incidents(
    readings: list[Reading], reports: list[CitizenReport]
) -> None:
    events = [e for evs in run_keyed(readings, TOPO_NOW).values() for e in evs]
    events += [e for evs in run_reports(reports).values() for e in evs]
    for event in events:
        wire = event.incident.model_dump_json()
        assert IncidentEvent.from_incident(Incident.model_validate_json(wire)) == event
