"""Many subjects at once: the Detector driver and the aggregates' breach check."""

from __future__ import annotations

from pipeline.rules.detection import Detector
from tests.unit.rules.detect_world import reading, topology
from tests.unit.rules.detection.drive import A


def test_replay_gives_the_same_ids() -> None:
    readings = [reading(s, i, 80 + 60 * (i % 4)) for i in range(12) for s in ("aq-1", "aq-3")]
    first = Detector(topology()).run(readings)
    second = Detector(topology()).run(readings)
    assert first == second
    assert len({e.incident.incident_id for e in first if e.action == A.open}) >= 2
