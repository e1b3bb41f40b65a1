"""Simulated events re-encoded in every input format normalize back to the same events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pipeline.ingest.normalize import Normalizer
from pipeline.sim.encoders import FORMATS, mix_formats
from pipeline.sim.events import SimEvent
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology, load_topology
from tests.support.paths import SHANGHAI

START = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
Stream = tuple[Topology, list[SimEvent], list[SimEvent]]


@pytest.fixture(scope="module")
def stream() -> Stream:
    topology = load_topology(SHANGHAI)
    sim = Simulator(topology, seed=5, start=START, reports_per_minute=30.0)
    canonical = list(sim.events(START + timedelta(minutes=3)))
    mixed = list(mix_formats(canonical, topology, FORMATS, seed=5))
    return topology, canonical, mixed


def test_every_format_appears_and_normalizes_to_the_canonical_event(stream: Stream) -> None:
    topology, canonical, mixed = stream
    normalizer = Normalizer(topology)
    formats: Counter[str] = Counter()
    for before, after in zip(canonical, mixed, strict=True):
        if before.fault is not None:
            continue
        want = normalizer.normalize(before.value).events
        result = normalizer.normalize(after.value)
        formats[result.format or "?"] += 1
        assert not result.rejections, (result.rejections, after.value)
        (got,) = result.events
        (expected,) = want
        if hasattr(expected, "sensor_id"):
            assert (got.sensor_id, got.metric, got.observed_at, got.areas) == (
                expected.sensor_id, expected.metric, expected.observed_at, expected.areas,
            )  # fmt: skip
            assert got.value == pytest.approx(expected.value, rel=1e-9)
        else:
            assert (got.category, got.areas, got.description) == (
                expected.category, expected.areas, expected.description,
            )  # fmt: skip
    assert {"canonical", "ngsi-v2", "ngsi-ld", "sensorthings", "open311"} <= set(formats), formats


def test_the_mix_is_deterministic_for_a_seed_and_leaves_faults_alone(stream: Stream) -> None:
    topology, canonical, mixed = stream
    again = list(mix_formats(canonical, topology, FORMATS, seed=5))
    assert [e.value for e in again] == [e.value for e in mixed]
    for before, after in zip(canonical, mixed, strict=True):
        if before.fault is not None:
            assert after.value == before.value
    assert orjson.loads(mixed[0].value) is not None
    with pytest.raises(ValueError, match="unknown formats"):
        list(mix_formats(canonical, topology, ["xml"]))
