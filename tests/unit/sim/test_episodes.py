"""Episodes: pollution drifts to the neighbour, local problems stay put, reports gather at them."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.models import AreaLevel
from pipeline.rules.clusters import haversine_m
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology
from tests.unit.sim.sim_world import TEN_AM_LOCAL, event_time, subset, valid_docs


def _district_means(
    docs: list[dict[str, Any]],
    topology: Topology,
    metric: str,
    start: datetime,
    begin: timedelta,
    end: timedelta,
) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for doc in docs:
        if doc.get("metric") != metric or not begin <= event_time(doc) - start < end:
            continue
        sensor = topology.sensor(doc["sensor_id"])
        assert sensor is not None
        district = topology.admin_codes(sensor.area)[AreaLevel.district]
        values.setdefault(district, []).append(doc["value"])
    return {d: statistics.mean(v) for d, v in values.items()}


def test_a_pollution_episode_rises_in_its_district_then_drifts_to_the_neighbour(
    demo: Topology,
) -> None:
    sim = Simulator(
        demo,
        seed=11,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=0,
        episodes_per_hour=0,
    )
    assert [code for code, _ in sim.neighbours("310101")] == ["310104"]
    episode = sim.episode(
        district="310101",
        metric="pm25",
        start=TEN_AM_LOCAL + timedelta(minutes=10),
        duration=timedelta(minutes=60),
        peak=200,
    )
    ((neighbour, lag, factor),) = episode.spread
    assert neighbour == "310104" and factor == 0.7
    assert timedelta(minutes=15) < lag < timedelta(minutes=25)  # ~6.7 km at 20 km/h
    docs = valid_docs(list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=2))))

    def means(begin: int, end: int) -> dict[str, float]:
        return _district_means(
            docs, demo, "pm25", TEN_AM_LOCAL, timedelta(minutes=begin), timedelta(minutes=end)
        )

    before, early, late = means(0, 10), means(25, 30), means(50, 60)
    assert early["310101"] > before["310101"] + 150  # plateau in its own district
    assert abs(early["310104"] - before["310104"]) < 30  # not arrived at the neighbour yet
    assert late["310104"] > before["310104"] + 100  # drifted there (0.7 * 200)
    after = means(110, 120)
    assert abs(after["310101"] - before["310101"]) < 30


def test_an_episode_without_spread_stays_local(demo: Topology) -> None:
    sim = Simulator(demo, seed=11, start=TEN_AM_LOCAL, reports_per_minute=0, episodes_per_hour=0)
    episode = sim.episode(district="310101", metric="pm25", spread=False)
    assert episode.spread == ()
    with pytest.raises(ValueError, match="no sensors"):
        sim.episode(district="999999")
    with pytest.raises(ValueError, match="not in topology"):
        sim.episode(district="310101", metric="radon")


def test_a_pressure_drop_lowers_pressure_and_brings_leak_reports_near_the_burst(
    shanghai: Topology,
) -> None:
    topology = subset(shanghai, "water_supply", 80)
    sim = Simulator(
        topology,
        seed=21,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=4,
        episodes_per_hour=0,
    )
    start = TEN_AM_LOCAL + timedelta(minutes=30)
    drop = sim.pressure_drop(district="310104", start=start, duration=timedelta(minutes=60))
    assert drop.category == "water_leak" and drop.hotspot is not None
    events = list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=2)))
    docs = valid_docs(events)
    during = _district_means(
        docs, topology, "water_pressure", TEN_AM_LOCAL, timedelta(minutes=45), timedelta(minutes=75)
    )
    before = _district_means(
        docs, topology, "water_pressure", TEN_AM_LOCAL, timedelta(0), timedelta(minutes=30)
    )
    assert during["310104"] < 180 < 250 < before["310104"]
    assert abs(during["310105"] - before["310105"]) < 20  # other districts unaffected

    reports = [d for d in docs if "report_id" in d]
    near = [
        r for r in reports if "lat" in r and haversine_m(r["lat"], r["lon"], *drop.hotspot) < 400
    ]
    in_episode = [
        r for r in reports if start <= event_time(r, "reported_at") < start + drop.duration
    ]
    near_in_episode = [r for r in near if r in in_episode]
    assert len(in_episode) > 150  # 4 a minute for an hour
    assert len(near_in_episode) >= 0.5 * len(in_episode)
    assert {r["category"] for r in near_in_episode} <= {"water_leak", "flooding"}
    assert Counter(r["category"] for r in near_in_episode).most_common(1)[0][0] == "water_leak"
    outside = [r for r in near if r not in in_episode]
    assert len(outside) <= 3  # background reports rarely land there by chance


def test_noise_complaints_gather_at_a_noisy_site(shanghai: Topology) -> None:
    topology = subset(shanghai, "noise", 80)
    sim = Simulator(
        topology,
        seed=4,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=2),
        reports_per_minute=2,
        episodes_per_hour=0,
    )
    site = sim.sensors_in("310110", "noise_laeq")[0]
    episode = sim.episode(
        district="310110",
        metric="noise_laeq",
        sensors=[site],
        start=TEN_AM_LOCAL + timedelta(minutes=30),
        duration=timedelta(minutes=60),
        peak=20,
    )
    assert episode.category == "noise_complaint"
    docs = valid_docs(list(sim.events(until=TEN_AM_LOCAL + timedelta(minutes=90))))

    def site_level(begin: int, end: int, sensor: str = site) -> float:
        return statistics.mean(
            d["value"]
            for d in docs
            if d.get("sensor_id") == sensor
            and timedelta(minutes=begin) <= event_time(d) - TEN_AM_LOCAL < timedelta(minutes=end)
        )

    assert site_level(45, 75) > site_level(0, 30) + 15
    neighbour = sim.sensors_in("310110", "noise_laeq")[1]
    assert abs(site_level(45, 75, neighbour) - site_level(0, 30, neighbour)) < 5
    complaints = [
        d
        for d in docs
        if d.get("category") == "noise_complaint"
        and episode.start <= event_time(d, "reported_at") < episode.start + episode.duration
    ]
    assert episode.hotspot is not None
    close = [c for c in complaints if haversine_m(c["lat"], c["lon"], *episode.hotspot) < 400]
    assert len(close) >= 30 and len(close) >= 0.8 * len(complaints)
