"""Many subjects at once: the Detector driver and the aggregates' breach check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.rules.detection import BreachCheck, Detector
from pipeline.rules.detection.spec import breach, spec_of
from pipeline.topology import Rule
from tests.unit.rules.detect_world import reading, topology
from tests.unit.rules.detection.drive import A


def test_replay_gives_the_same_ids() -> None:
    readings = [reading(s, i, 80 + 60 * (i % 4)) for i in range(12) for s in ("aq-1", "aq-3")]
    first = Detector(topology()).run(readings)
    second = Detector(topology()).run(readings)
    assert first == second
    assert len({e.incident.incident_id for e in first if e.action == A.open}) >= 2


def test_breach_check_counts_a_reading_that_breaches_any_rule_of_its_metric() -> None:
    check = BreachCheck(topology())
    assert check(reading("aq-1", 0, 76))  # pm25-count: above 75
    assert not check(reading("aq-1", 0, 75))  # the threshold itself is no breach
    assert check(reading("wq-1", 0, 4.9, "do"))  # do-low: below 5
    assert not check(reading("wq-1", 0, 7, "ph")) and check(reading("wq-1", 0, 9.5, "ph"))
    assert not check(reading("wq-1", 0, 1e9, "no2"))  # no rule for the metric


@given(value=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_breach_check_agrees_with_every_rule_of_the_metric(value: float) -> None:
    # The fast path (inside every rule's safe band) must decide as the rules themselves.
    world = topology()
    check = BreachCheck(world)
    specs = [spec_of(rule) for rule in world.rules if isinstance(rule, Rule)]
    for metric in {spec.metric for spec in specs} | {"no2"}:
        expected = any(breach(s, value) for s in specs if s.metric == metric)
        assert check.value(metric, value) == expected
        for spec in (s for s in specs if s.metric == metric):  # the thresholds themselves
            for edge in (spec.safe_low, spec.safe_high):
                if edge not in (float("inf"), float("-inf")):
                    want = any(breach(s, edge) for s in specs if s.metric == metric)
                    assert check.value(metric, edge) == want
