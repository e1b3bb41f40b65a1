"""Injected faults: the share asked for, every kind, and every one rejected by normalization."""

from __future__ import annotations

import itertools
from collections import Counter

from pipeline.ingest.normalize import Normalizer
from pipeline.sim.faults import FAULT_KINDS
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology
from tests.unit.sim.sim_world import TEN_AM_LOCAL, subset


def test_fault_rate_is_respected_and_every_fault_is_rejected(shanghai: Topology) -> None:
    topology = subset(shanghai, "air", 40)
    sim = Simulator(
        topology,
        seed=9,
        start=TEN_AM_LOCAL,
        fault_rate=0.05,
        reports_per_minute=0,
        include_location=True,
    )
    events = list(itertools.islice(sim.events(), 12_000))
    faults = Counter(e.fault for e in events if e.fault)
    assert 0.04 < sum(faults.values()) / len(events) < 0.06
    assert set(faults) == set(FAULT_KINDS)
    assert faults == sim.faults
    normalizer = Normalizer(topology)
    for event in events:
        result = normalizer.normalize(event.value)
        if event.fault:
            assert result.rejections and not result.events, (event.fault, event.value)
        else:
            assert len(result.readings) == 1 and not result.rejections, event.value


def test_no_faults_at_rate_zero(demo: Topology) -> None:
    events = list(itertools.islice(Simulator(demo, seed=1, start=TEN_AM_LOCAL).events(), 2000))
    assert not any(e.fault for e in events)
