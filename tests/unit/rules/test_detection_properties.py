"""Properties of detection that must hold for any input: keyed partitioning, lateness,
persistence, replay, and the one-open-incident lifecycle shape."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import CitizenReport, Incident, IncidentAction, Reading
from pipeline.rules.clusters import ClusterState
from pipeline.rules.clusters import state_key as cluster_key
from pipeline.rules.clusters import step as cluster_step
from pipeline.rules.detection import DetectorState, new_state, state_key, step, subject_for
from pipeline.rules.detection import advance as advance_state
from pipeline.rules.incidents import IncidentEvent
from pipeline.topology import Topology
from tests.unit.rules.detect_world import T0, reading, report, with_lateness

A = IncidentAction
LATENESS_MIN = 5
TOPO_LATE = with_lateness(LATENESS_MIN * 60)
TOPO_NOW = with_lateness(0)
PM25 = [10.0, 50.0, 61.0, 70.0, 80.0, 100.0, 120.0, 160.0, 260.0, 300.0]
SENSORS = ["aq-1", "aq-2", "aq-3", "aq-4"]
END = T0 + timedelta(days=30)


@st.composite
def pm25_series(draw: st.DrawFn) -> list[Reading]:
    """Readings of several sensors, each sensor at distinct minutes, in time order."""
    out: list[Reading] = []
    for sensor in draw(st.lists(st.sampled_from(SENSORS), min_size=1, max_size=4, unique=True)):
        minutes = draw(st.lists(st.integers(0, 120), min_size=1, max_size=30, unique=True))
        values = draw(st.lists(st.sampled_from(PM25), min_size=len(minutes), max_size=len(minutes)))
        out += [reading(sensor, m, v) for m, v in zip(sorted(minutes), values, strict=True)]
    out.sort(key=lambda r: (r.observed_at, r.sensor_id))
    return out


Key = tuple[str, str]


def run_keyed(
    readings: list[Reading],
    topo: Topology,
    states: dict[Key, DetectorState] | None = None,
    flush: bool = True,
    roundtrip: bool = False,
) -> dict[Key, list[IncidentEvent]]:
    """Feed readings through step per (rule, subject) like the worker; events per key."""
    states = {} if states is None else states
    out: dict[Key, list[IncidentEvent]] = defaultdict(list)
    for r in readings:
        for rule in topo.rules:
            subject = subject_for(r, rule, topo)
            if subject is None:
                continue
            key = (str(rule.id), subject)
            state = states.get(key) or new_state(rule, subject)
            if roundtrip:
                state = DetectorState.from_dict(json.loads(json.dumps(state.to_dict())))
            states[key], events = step(state, r, rule, topo)
            out[key] += events
    if flush:
        rules = {str(rule.id): rule for rule in topo.rules}
        for key in sorted(states):
            states[key], events = advance_state(states[key], END, rules[key[0]], topo)
            out[key] += events
    return {k: v for k, v in out.items() if v}


def worker_of(subject: str) -> int:
    return hashlib.sha256(subject.encode()).digest()[0] % 2


@settings(max_examples=120, deadline=None)
@given(pm25_series())
def test_partitioned_by_subject_equals_one_worker(readings: list[Reading]) -> None:
    one = run_keyed(readings, TOPO_NOW)
    parts: dict[Key, list[IncidentEvent]] = {}
    for worker in (0, 1):
        mine = []
        for r in readings:
            # A real deployment routes each (rule, subject) by its key; a reading feeds the
            # worker of every subject it has. Here: feed it if any of its subjects is ours.
            if any(
                (s := subject_for(r, rule, TOPO_NOW)) is not None and worker_of(s) == worker
                for rule in TOPO_NOW.rules
            ):
                mine.append(r)
        got = run_keyed(mine, TOPO_NOW)
        parts.update({k: v for k, v in got.items() if worker_of(k[1]) == worker})
    assert parts == one


@settings(max_examples=120, deadline=None)
@given(pm25_series(), st.randoms(use_true_random=False))
def test_out_of_order_within_lateness_changes_nothing(readings: list[Reading], rnd) -> None:  # type: ignore[no-untyped-def]
    in_order = run_keyed(readings, TOPO_LATE)
    # Each reading is delayed by less than the allowed lateness.
    jitter = {r.event_id: rnd.uniform(0, LATENESS_MIN - 0.01) for r in readings}
    arrival = sorted(
        readings,
        key=lambda r: (r.observed_at + timedelta(minutes=jitter[r.event_id]), r.event_id),
    )
    assert run_keyed(arrival, TOPO_LATE) == in_order


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_persisting_state_between_every_reading_changes_nothing(readings: list[Reading]) -> None:
    assert run_keyed(readings, TOPO_LATE, roundtrip=True) == run_keyed(readings, TOPO_LATE)


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_replay_is_deterministic_and_a_second_delivery_emits_nothing(
    readings: list[Reading],
) -> None:
    states: dict[Key, DetectorState] = {}
    first = run_keyed(readings, TOPO_NOW, states, flush=False)
    assert run_keyed(readings, TOPO_NOW, flush=False) == first
    again = run_keyed(readings, TOPO_NOW, states, flush=False)  # delivered twice
    assert {k: v for k, v in again.items() if k[0] == "pm25-count"} == {}


@settings(max_examples=150, deadline=None)
@given(pm25_series())
def test_one_open_incident_per_subject_and_no_downgrade(readings: list[Reading]) -> None:
    for key, events in run_keyed(readings, TOPO_NOW).items():
        open_id: str | None = None
        seen_ids: set[str] = set()
        last_rank = -1
        last_count = 0
        for event in events:
            inc = event.incident
            if event.action == A.open:
                assert open_id is None, key
                assert inc.incident_id not in seen_ids
                open_id = inc.incident_id
                seen_ids.add(open_id)
                last_rank = inc.severity.rank
                last_count = inc.evidence.count
                assert inc.subject == key[1] and inc.rule_id == key[0]
                continue
            assert inc.incident_id == open_id, key
            assert inc.severity.rank >= last_rank
            if event.action == A.upgrade:
                assert inc.severity.rank > last_rank
            if event.action == A.evidence:
                assert inc.severity.rank == last_rank
            if event.action == A.auto_resolve:
                assert inc.evidence.count == last_count
                open_id = None
            else:
                assert inc.evidence.count == last_count + 1
                assert inc.evidence.peak_value >= inc.evidence.threshold
            last_rank = inc.severity.rank
            last_count = inc.evidence.count


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_sensor_opens_need_three_breaches_above_the_lowest_level(readings: list[Reading]) -> None:
    events = run_keyed(readings, TOPO_NOW)
    for (rule_id, subject), evs in events.items():
        if rule_id != "pm25-count":
            continue
        by_id = {r.event_id: r for r in readings}
        for e in evs:
            if e.action == A.open:
                ids = e.incident.evidence.event_ids
                assert len(ids) == 3
                assert all(by_id[i].value > 75 and by_id[i].sensor_id == subject for i in ids)
                assert e.incident.incident_id.startswith("inc-")
    assert state_key("r", "s") == "r|s"


@st.composite
def report_series(draw: st.DrawFn) -> list[CitizenReport]:
    """Reports of three categories scattered over ~600 m and two hours, in time order."""
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        out.append(
            report(
                f"r-{i}",
                draw(st.integers(0, 120)),
                category=draw(st.sampled_from(["water_leak", "noise", "gas_smell"])),
                lat=31.2365 + draw(st.integers(0, 6)) * 0.0009,
                lon=121.4790 + draw(st.integers(0, 6)) * 0.001,
            )
        )
    out.sort(key=lambda r: (r.reported_at, r.report_id))
    return out


def run_reports(reports: list[CitizenReport]) -> dict[str, list[IncidentEvent]]:
    states: dict[str, ClusterState] = {}
    out: dict[str, list[IncidentEvent]] = defaultdict(list)
    for r in reports:
        key = cluster_key(r)
        states[key], events = cluster_step(
            states.get(key) or ClusterState(category=key), r, TOPO_NOW
        )
        out[key] += events
    return dict(out)


@settings(max_examples=100, deadline=None)
@given(report_series())
def test_report_partitioning_by_category_and_cluster_shape(reports: list[CitizenReport]) -> None:
    one = run_reports(reports)
    split: dict[str, list[IncidentEvent]] = {}
    for worker in (0, 1):
        split.update(run_reports([r for r in reports if worker_of(cluster_key(r)) == worker]))
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
