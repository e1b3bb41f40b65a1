"""The simulator's stream: deterministic for a seed, complete every round, canonical and ordered."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import orjson

from pipeline.sim.events import SimEvent
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology
from tests.unit.sim.sim_world import TEN_AM_LOCAL, event_time, valid_docs


def _stream(topology: Topology, seed: int, n: int = 3000) -> list[SimEvent]:
    sim = Simulator(
        topology,
        seed=seed,
        start=TEN_AM_LOCAL,
        interval=timedelta(seconds=20),
        fault_rate=0.02,
        reports_per_minute=6,
        episodes_per_hour=4,
    )
    return list(itertools.islice(sim.events(), n))


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(demo: Topology) -> None:
    first, again, other = _stream(demo, 7), _stream(demo, 7), _stream(demo, 8)
    assert [e.value for e in first] == [e.value for e in again]
    assert [e.key for e in first] == [e.key for e in again]
    values = [
        (orjson.loads(a.value).get("value"), orjson.loads(b.value).get("value"))
        for a, b in zip(first, other, strict=True)
        if a.fault is None and b.fault is None
    ]
    assert sum(x != y for x, y in values) > 0.8 * len(values)


def test_every_sensor_reports_every_registered_metric_each_round(shanghai: Topology) -> None:
    sim = Simulator(shanghai, seed=1, start=TEN_AM_LOCAL, reports_per_minute=0, episodes_per_hour=0)
    assert sim.readings_per_round == sum(len(s.metrics) for s in shanghai.sensors) == 1296
    first_round = list(itertools.islice(sim.events(), 2 * sim.readings_per_round))
    seen = Counter((d["sensor_id"], d["metric"]) for d in valid_docs(first_round))
    expected = {(s.id, m) for s in shanghai.sensors for m in s.metrics}
    assert set(seen) == expected
    assert set(seen.values()) == {2}
    assert {e.topic for e in first_round} == {"cityops.shanghai.sensors.raw"}
    assert all(e.key == orjson.loads(e.value)["sensor_id"].encode() for e in first_round)


def test_readings_are_canonical_in_range_and_time_ordered(demo: Topology) -> None:
    sim = Simulator(
        demo,
        seed=3,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=0,
        include_location=True,
    )
    events = list(itertools.islice(sim.events(), 800))
    docs = valid_docs(events)
    assert list(docs[0]) == [
        "event_id",
        "sensor_id",
        "metric",
        "value",
        "unit",
        "observed_at",
        "lat",
        "lon",
    ]
    assert docs[0]["observed_at"] == "2026-11-25T02:00:00.000000Z"
    for doc in docs:
        metric = demo.metrics[doc["metric"]]
        sensor = demo.sensor(doc["sensor_id"])
        assert sensor is not None and doc["metric"] in sensor.metrics
        assert doc["unit"] == metric.unit
        assert metric.range[0] <= doc["value"] <= metric.range[1]
        assert (doc["lat"], doc["lon"]) == (sensor.lat, sensor.lon)
    times = [e.at_us for e in events]
    assert times == sorted(times)
    assert len({d["event_id"] for d in docs}) == len(docs)
    # 8 readings a round, a round a minute: 100 rounds span 99 minutes.
    assert event_time(docs[-1]) - event_time(docs[0]) >= timedelta(minutes=99)


def test_for_rate_spreads_a_round_over_rate_and_speedup(demo: Topology) -> None:
    sim = Simulator.for_rate(demo, rate=80, speedup=60, start=TEN_AM_LOCAL)
    # 8 readings at 80/s take 0.1 s of wall time = 6 s simulated at speedup 60.
    assert sim.interval == timedelta(seconds=6)
