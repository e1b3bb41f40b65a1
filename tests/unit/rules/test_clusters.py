"""Citizen-report rules: urgent reports and radius/window clusters."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings

from pipeline.models import CitizenReport, IncidentAction, IncidentKind, Severity
from pipeline.rules.clusters import ClusterState, haversine_m, state_key, step
from pipeline.rules.lifecycle import IncidentEvent, incident_id
from pipeline.topology import Topology
from tests.unit.rules.detect_world import (
    BASE,
    HUANGPU,
    NANJING_EAST,
    T0,
    WAITAN,
    report,
    topology,
)
from tests.unit.rules.streams import report_series, run_reports, worker_of

A = IncidentAction
TOPO = topology()
LAT, LON = 31.2365, 121.4790
DLAT_100M = 100 / 111_195  # about 100 m of latitude


def feed(
    reports: list[CitizenReport], states: dict[str, ClusterState] | None = None
) -> list[IncidentEvent]:
    states = {} if states is None else states
    events: list[IncidentEvent] = []
    for r in reports:
        key = state_key(r)
        state = states.get(key) or ClusterState(category=key)
        states[key], out = step(state, r, TOPO)
        events += out
    return events


def test_haversine_against_known_distances() -> None:
    assert haversine_m(LAT, LON, LAT, LON) == 0
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    # Shanghai People's Square to the Bund: about 1.6 km.
    assert haversine_m(31.2304, 121.4737, 31.2400, 121.4900) == pytest.approx(1_890, rel=0.05)


def test_urgent_category_opens_at_once() -> None:
    [event] = feed([report("r-1", 0, category="gas_smell")])
    inc = event.incident
    assert event.action == A.open and inc.kind == IncidentKind.urgent_report
    assert inc.incident_id == incident_id("urgent", "gas_smell", "r-1")
    assert (inc.severity, inc.category, inc.subject, inc.subject_kind) == (
        Severity.red,
        "gas_smell",
        "r-1",
        "area",
    )
    assert inc.evidence.event_ids == ("r-1",) and inc.opened_at == T0
    assert inc.ack_due == T0 + timedelta(minutes=15)
    assert (inc.owner_level, inc.owner_area) == ("street", NANJING_EAST)
    assert feed([report("r-1", 0, category="gas_smell")] * 2) == [event]  # replay: once


def test_report_flagged_urgent_opens_at_once_with_its_category_severity() -> None:
    [event] = feed([report("r-9", 0, urgent=True)])
    assert event.incident.kind == IncidentKind.urgent_report
    assert event.incident.severity == Severity.yellow


def test_n_reports_within_radius_and_window_open_one_cluster() -> None:
    reports = [
        report("r-1", 0, lat=LAT, lon=LON),
        report("r-2", 10, lat=LAT + DLAT_100M, lon=LON),
        report("r-3", 20, lat=LAT + 2 * DLAT_100M, lon=LON),
    ]
    assert feed(reports[:2]) == []
    [event] = feed(reports)
    inc = event.incident
    assert event.action == A.open and inc.kind == IncidentKind.report_cluster
    assert inc.incident_id == incident_id("cluster", "water_leak", T0.isoformat(), "r-1")
    assert inc.evidence.event_ids == ("r-1", "r-2", "r-3")
    assert (inc.evidence.count, inc.evidence.threshold) == (3, 3.0)
    assert (inc.evidence.first_at, inc.evidence.last_at) == (T0, T0 + timedelta(minutes=20))
    assert inc.severity == Severity.yellow and inc.category == "water_leak"
    assert inc.subject == f"water_leak@{LAT + DLAT_100M:.5f},{LON:.5f}"
    assert inc.areas.street == NANJING_EAST and inc.areas.district == HUANGPU
    assert inc.opened_at == T0 + timedelta(minutes=20)


def test_later_reports_near_the_centre_attach_instead_of_opening() -> None:
    states: dict[str, ClusterState] = {}
    opened = feed([report(f"r-{i}", i, lat=LAT + i * DLAT_100M / 2) for i in range(3)], states)
    assert [e.action for e in opened] == [A.open]
    more = feed([report("r-3", 25, lat=LAT + 2.5 * DLAT_100M), report("r-4", 30)], states)
    assert [e.action for e in more] == [A.evidence, A.evidence]
    assert {e.incident.incident_id for e in more} == {opened[0].incident.incident_id}
    assert more[-1].incident.evidence.count == 5
    assert more[-1].incident.evidence.event_ids == ("r-0", "r-1", "r-2", "r-3", "r-4")


def test_far_or_spread_out_reports_do_not_cluster() -> None:
    far = [report(f"r-{i}", i, lat=LAT + i * 4 * DLAT_100M) for i in range(5)]  # 400 m apart
    assert feed(far) == []
    slow = [report(f"r-{i}", 31 * i) for i in range(5)]  # 31 min apart, window 30 min
    assert feed(slow) == []


def test_cluster_stops_accepting_after_its_window_and_a_new_one_forms() -> None:
    states: dict[str, ClusterState] = {}
    first = feed([report(f"a-{i}", i) for i in range(3)], states)
    # At minute 40 the old cluster no longer accepts (its last report + 30 min window)...
    assert [e.action for e in feed([report("b-0", 40)], states)] == []
    # ...and once nothing on time could reach it any more, it is forgotten.
    later = feed([report(f"b-{i}", 70 + i) for i in range(1, 4)], states)
    assert [e.action for e in later] == [A.open]
    assert later[0].incident.incident_id != first[0].incident.incident_id
    assert len(states["water_leak"].clusters) == 1  # the old cluster is forgotten


def test_unlocated_late_and_replayed_reports() -> None:
    states: dict[str, ClusterState] = {}
    feed([report("r-1", 60), report("x", 61, lat=None)], states)
    feed([report("r-0", 0)], states)  # more than window + lateness before the newest
    feed([report("r-1", 60)], states)
    state = states["water_leak"]
    assert (state.unlocated, state.late) == (1, 1)
    assert [p.report_id for p in state.pending] == ["r-1"]


def test_categories_are_separate_states() -> None:
    reports = [report(f"n-{i}", i, category="noise") for i in range(2)] + [
        report(f"w-{i}", i) for i in range(3)
    ]
    events = feed(reports)
    assert sorted((e.incident.category, e.action) for e in events) == [
        ("noise", A.open),
        ("water_leak", A.open),
    ]
    assert state_key(reports[0]) == "noise"


def test_state_round_trips_through_json() -> None:
    reports = [
        report(
            f"r-{i}", 3 * i, lat=LAT + (i % 3) * DLAT_100M, street=WAITAN if i % 2 else NANJING_EAST
        )
        for i in range(8)
    ]
    straight: dict[str, ClusterState] = {}
    expected = feed(reports, straight)
    resumed: dict[str, ClusterState] = {}
    got: list[IncidentEvent] = []
    for r in reports:
        resumed = {
            k: ClusterState.from_dict(json.loads(json.dumps(v.to_dict())))
            for k, v in resumed.items()
        }
        got += feed([r], resumed)
    assert got == expected
    assert [e.action for e in expected][:1] == [A.open]
    assert resumed["water_leak"].to_dict() == straight["water_leak"].to_dict()


@settings(max_examples=100, deadline=None)
@given(report_series())
def test_report_partitioning_by_category_and_cluster_shape(reports: list[CitizenReport]) -> None:
    one = run_reports(reports)
    split: dict[str, list[IncidentEvent]] = {}
    for worker in (0, 1):
        split.update(run_reports([r for r in reports if worker_of(state_key(r)) == worker]))
    assert split == one
    by_id = {r.report_id: r for r in reports}
    for category, events in one.items():
        opened: set[str] = set()
        for event in events:
            inc = event.incident
            assert inc.category == category
            if category == "gas_smell":
                assert event.action == A.open and inc.evidence.count == 1
                continue
            rule = {"water_leak": 3, "noise": 2}[category]
            if event.action == A.open:
                assert inc.incident_id not in opened
                opened.add(inc.incident_id)
                assert inc.evidence.count >= rule
                times = [by_id[i].reported_at for i in inc.evidence.event_ids]
                assert inc.evidence.first_at == min(times)
            else:
                assert event.action == A.evidence and inc.incident_id in opened


def _not_honouring(category_id: str) -> Topology:
    """The test city with `category_id`'s honour_urgent_flag set to false."""
    categories = [
        {**c, "honour_urgent_flag": False} if c["id"] == category_id else c
        for c in BASE["report_categories"]
    ]
    return topology(report_categories=categories)


def test_a_category_may_ignore_a_report_s_own_urgent_flag() -> None:
    strict = _not_honouring("water_leak")
    flagged = [report(f"r-{i}", i, urgent=True, lat=LAT + i * DLAT_100M) for i in range(3)]
    state = ClusterState(category="water_leak")
    events: list[IncidentEvent] = []
    for r in flagged:
        state, out = step(state, r, strict)
        events += out
    # no urgent incident per report: the three cluster into one, as unflagged reports do
    assert [(e.action, e.incident.kind) for e in events] == [(A.open, IncidentKind.report_cluster)]
    # the default honours the flag: each report opens its own urgent incident
    assert {e.incident.kind for e in feed(flagged)} == {IncidentKind.urgent_report}


def test_a_recorded_only_category_that_ignores_the_flag_opens_nothing() -> None:
    recorded = {"id": "litter", "name": "垃圾", "severity": "blue"}
    honouring = topology(report_categories=[*BASE["report_categories"], recorded])
    strict = topology(report_categories=[*BASE["report_categories"],
                                         {**recorded, "honour_urgent_flag": False}])  # fmt: skip
    flagged = report("r-1", 0, category="litter", urgent=True)
    state = ClusterState(category="litter")
    assert [e.incident.kind for e in step(state, flagged, honouring)[1]] == [
        IncidentKind.urgent_report
    ]
    assert step(ClusterState(category="litter"), flagged, strict)[1] == []
