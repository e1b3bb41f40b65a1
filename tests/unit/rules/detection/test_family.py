"""The threshold family's entry in the registry: what it claims and what it answers."""

from __future__ import annotations

import json
from datetime import timedelta

from pipeline.models import ReadingRow
from pipeline.rules.detection import THRESHOLD, DetectorState, new_state, subject_for
from pipeline.rules.detection.step import step_row
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
    assert THRESHOLD.runner(RULES["pm25-district"], TOPO).horizon() == timedelta(minutes=10)
    assert THRESHOLD.runner(RULES["pm25-count"], TOPO).horizon() == timedelta(0)


def test_answers_as_the_module_functions_do() -> None:
    rule = RULES["pm25-district"]
    r = reading("aq-1", 1, 300)
    row = ReadingRow.of(r)
    runner = THRESHOLD.runner(rule, TOPO)
    assert runner.subject(row) == subject_for(r, rule, TOPO) == HUANGPU
    registered = tuple(
        sensor.id
        for sensor in TOPO.sensors
        if "pm25" in sensor.metrics and TOPO.admin_codes(sensor.area).get("district") == HUANGPU
    )
    assert len(registered) > 1
    through_family = runner.new_state(HUANGPU)
    direct = new_state(rule, HUANGPU)
    through_family, none_yet = runner.step(through_family, row, None, {})
    # The family hands the step the sensors registered in the area: its windows wait for them.
    direct, _ = step_row(direct, row, rule, TOPO, expected=registered)
    assert none_yet == [] and through_family.to_dict() == direct.to_dict()
    assert through_family.clock is not None
    assert set(through_family.clock.sources({})) == set(registered)
    data = json.loads(json.dumps(THRESHOLD.state_to_dict(through_family)))
    restored = THRESHOLD.state_from_dict(data)
    _, events = runner.advance(restored, T0 + timedelta(minutes=10))
    assert [e.action for e in events] == [A.open]
