"""Reading a topology rule into a Spec, and the breach / clear conditions evaluated on it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.models import AdminCodes, AreaLevel, Reading, Severity
from pipeline.rules.detection import advance as advance_state
from pipeline.rules.detection import breach, cleared, new_state, spec_of, step
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import load_topology
from tests.unit.rules.detect_world import T0, topology
from tests.unit.rules.detection.drive import A

RULES = {str(rule.id): rule for rule in topology().rules}


@pytest.mark.parametrize(
    ("rule_id", "value", "expected"),
    [
        ("pm25-count", 75, None),  # above: the threshold itself is no breach
        ("pm25-count", 75.5, (Severity.blue, 75)),
        ("pm25-count", 300, (Severity.red, 250)),  # the highest level met
        ("do-low", 5, None),
        ("do-low", 2.5, (Severity.yellow, 3)),
        ("ph-band", 7, None),
        ("ph-band", 5.5, (Severity.blue, 6)),  # outside, below the band
        ("ph-band", 10.5, (Severity.orange, 10)),  # outside, above the wider band
    ],
)
def test_breach_is_the_highest_level_met_and_its_threshold(
    rule_id: str, value: float, expected: tuple[Severity, float] | None
) -> None:
    assert breach(spec_of(RULES[rule_id]), value) == expected


@pytest.mark.parametrize(
    ("rule_id", "value", "expected"),
    [
        ("pm25-count", 61, False),  # between clear (60) and the threshold: the hysteresis band
        ("pm25-count", 60, True),
        ("do-low", 5.5, False),
        ("do-low", 6, True),
        ("ph-band", 8.7, False),  # inside the levels' band, outside the clear band
        ("ph-band", 8.5, True),
    ],
)
def test_cleared_needs_the_clear_value(rule_id: str, value: float, expected: bool) -> None:
    assert cleared(spec_of(RULES[rule_id]), value) is expected


def test_spec_is_read_once_per_rule_object() -> None:
    rule = RULES["pm25-district"]
    spec = spec_of(rule)
    assert spec_of(rule) is spec
    assert (spec.area_level, spec.statistic, spec.window_us) == ("district", "mean", 600_000_000)
    assert spec_of(RULES["pm25-count"]).window_us == 0


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
