"""The threshold family's entry in the registry: what it claims and what it answers."""

from __future__ import annotations

import json
from datetime import timedelta

from pipeline.rules.detection import THRESHOLD, DetectorState, new_state, step, subject_for
from tests.unit.rules.detect_world import HUANGPU, T0, reading, report, topology
from tests.unit.rules.detection.drive import A

TOPO = topology()
RULES = {str(rule.id): rule for rule in TOPO.rules}


def test_claims_every_threshold_rule_and_nothing_else() -> None:
    assert THRESHOLD.kind == "threshold" and THRESHOLD.state_type is DetectorState
    assert all(THRESHOLD.matches(rule) for rule in TOPO.rules)
    assert not THRESHOLD.matches(TOPO.report_categories[0])
    assert not THRESHOLD.matches(report("r-1", 0))


def test_horizon_is_the_area_window_or_nothing() -> None:
    assert THRESHOLD.horizon(RULES["pm25-district"]) == timedelta(minutes=10)
    assert THRESHOLD.horizon(RULES["pm25-count"]) == timedelta(0)


def test_answers_as_the_module_functions_do() -> None:
    rule = RULES["pm25-district"]
    r = reading("aq-1", 1, 300)
    assert THRESHOLD.subject_for(r, rule, TOPO) == subject_for(r, rule, TOPO) == HUANGPU
    through_family = THRESHOLD.new_state(rule, HUANGPU)
    direct = new_state(rule, HUANGPU)
    through_family, none_yet = THRESHOLD.step(through_family, r, rule, TOPO)
    direct, _ = step(direct, r, rule, TOPO)
    assert none_yet == [] and through_family.to_dict() == direct.to_dict()
    data = json.loads(json.dumps(THRESHOLD.state_to_dict(through_family)))
    restored = THRESHOLD.state_from_dict(data)
    _, events = THRESHOLD.advance(restored, T0 + timedelta(minutes=10), rule, TOPO)
    assert [e.action for e in events] == [A.open]
