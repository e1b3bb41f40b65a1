"""Reading a topology rule into a Spec: every shipped rule can be evaluated."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.models import AdminCodes, AreaLevel, Reading
from pipeline.rules.detection import advance as advance_state
from pipeline.rules.detection import new_state, spec_of, step
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import load_topology
from tests.unit.rules.detect_world import T0
from tests.unit.rules.detection.drive import A


@pytest.mark.parametrize("path", sorted(Path("topologies").glob("*.yaml")), ids=str)
def test_every_shipped_topology_rule_can_be_evaluated(path: Path) -> None:
    topo = load_topology(path)
    assert topo.rules, path
    for rule in topo.rules:
        spec = spec_of(rule)
        assert spec.levels and (spec.count is not None) != (spec.duration is not None)
        if spec.area_level is None:
            subject = next(s for s in topo.sensors if rule.metric in s.metrics)
            areas = topo.admin_codes(subject.area)
            lowest = rule.levels[0]
            nxt = rule.levels[1] if len(rule.levels) > 1 else None
            # Halfway into the lowest level's band: real GB 3838 steps are closer than 1.
            if rule.condition == "outside":
                edge = lowest.high or 0.0
                value = (edge + nxt.high) / 2 if nxt and nxt.high is not None else edge + 1
            else:
                edge = lowest.threshold or 0.0
                step_up = nxt.threshold if nxt and nxt.threshold is not None else None
                if step_up is None:
                    value = edge + (1 if rule.condition == "above" else -1)
                else:
                    value = (edge + step_up) / 2
            state = new_state(rule, subject.id)
            events: list[IncidentEvent] = []
            for i in range(spec.count or 1000):
                r = Reading(
                    event_id=f"e{i}",
                    sensor_id=subject.id,
                    metric=rule.metric,
                    value=value,
                    unit=topo.metrics[rule.metric].unit,
                    observed_at=T0 + timedelta(seconds=30 * i),
                    areas=AdminCodes(
                        district=areas.get(AreaLevel.district), street=areas.get(AreaLevel.street)
                    ),
                )
                state, out = step(state, r, rule, topo)
                events += out
                state, out = advance_state(state, r.observed_at, rule, topo)
                events += out
                if events:
                    break
            assert [e.action for e in events] == [A.open], rule.id
            assert events[0].incident.severity == lowest.severity
