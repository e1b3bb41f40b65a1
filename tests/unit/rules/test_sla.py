"""SLA escalation, step by step and under any sequence of timer ticks."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import AdminCodes, Severity
from pipeline.rules.routing import route
from pipeline.rules.sla import check_sla
from tests.unit.rules.detect_world import CITY, HUANGPU, T0, XUHUI, topology
from tests.unit.rules.incident_world import TOPO, A, S, make


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
    # It takes effect when the ack was due (2h), and the new deadlines run from there.
    assert (e1.ack_due, e1.resolve_due) == (at(4), at(26))
    assert e1.version == inc.version + 1 and e1.updated_at == t.at == at(2)
    assert t.reason is not None and "ack overdue" in t.reason
    assert check_sla(e1, at(4), TOPO) == []  # not yet overdue at the district
    [t2] = check_sla(e1, at(4.5), TOPO)
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


def test_an_escalation_is_the_same_whenever_the_timer_ticks() -> None:
    # A tick repeated after a crash, minutes or days later, must yield the same bytes.
    inc = make()
    late = [check_sla(inc, at(hours), TOPO)[0].incident for hours in (2.01, 3, 50)]
    assert len({e.model_dump_json() for e in late}) == 1
    assert late[0].updated_at == inc.ack_due


def test_an_escalation_never_moves_the_incident_back_in_time() -> None:
    inc = make().model_copy(update={"updated_at": at(3)})  # a comment after the deadline
    [t] = check_sla(inc, at(3.5), TOPO)
    assert t.at == t.incident.updated_at == at(3) and t.incident.ack_due == at(5)


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
        assert inc.updated_at <= new.updated_at <= now  # at the missed deadline, not `now`
        assert new.ack_due is not None and new.ack_due > new.updated_at
        inc = new
    assert inc.escalations <= 2
