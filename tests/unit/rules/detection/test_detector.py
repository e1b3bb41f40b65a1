"""Many subjects at once: the Detector driver and the aggregates' breach check."""

from __future__ import annotations

from pipeline.rules.detection import BreachCheck, Detector
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
