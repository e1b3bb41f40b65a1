"""Random streams of readings and reports, and runners that feed them through the rules as
the worker does (state per key), for the property tests of detection, clusters and the
lifecycle."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import timedelta

from hypothesis import strategies as st

from pipeline.models import CitizenReport, IncidentAction, Reading
from pipeline.rules.clusters import ClusterState
from pipeline.rules.clusters import state_key as cluster_key
from pipeline.rules.clusters import step as cluster_step
from pipeline.rules.detection import DetectorState, new_state, step, subject_for
from pipeline.rules.detection import advance as advance_state
from pipeline.rules.lifecycle import IncidentEvent
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
