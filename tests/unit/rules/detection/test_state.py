"""The threshold state's codec: a state survives JSON at any point, sensor or area."""

from __future__ import annotations

import json

from pipeline.rules.detection import Detector, DetectorState, new_state, step
from pipeline.rules.lifecycle import IncidentEvent
from tests.unit.rules.detect_world import reading, topology, with_lateness
from tests.unit.rules.detection.drive import A, only


def test_state_round_trips_through_json_mid_incident() -> None:
    topo = with_lateness(60)
    rule = topo.rules[0]
    readings = [reading("aq-1", i, v) for i, v in enumerate([80, 90, 120, 300, 70, 50, 90])]
    straight = new_state(rule, "aq-1")
    expected: list[IncidentEvent] = []
    for r in readings:
        straight, out = step(straight, r, rule, topo)
        expected += out
    resumed = new_state(rule, "aq-1")
    got: list[IncidentEvent] = []
    for r in readings:
        resumed = DetectorState.from_dict(json.loads(json.dumps(resumed.to_dict())))
        resumed, out = step(resumed, r, rule, topo)
        got += out
    assert got == expected
    assert [e.action for e in expected] == [A.open, A.upgrade, A.auto_resolve]
    assert resumed.to_dict() == straight.to_dict()


def test_area_state_round_trips() -> None:
    topo = topology(**only("pm25-district"))
    detector = Detector(topo)
    detector.run([reading("aq-1", 1, 100), reading("aq-2", 2, 0.1)])
    for key, state in detector.states.items():
        data = json.loads(json.dumps(state.to_dict()))
        assert DetectorState.from_dict(data).to_dict() == state.to_dict(), key
