"""The sensor world: one series per registered metric, biased baselines, district geometry."""

from __future__ import annotations

import random

import pytest

from pipeline.sim.patterns import CURVES
from pipeline.sim.world import EARTH_M_PER_DEG, SensorWorld, Series, distance_m
from pipeline.topology import Topology


def test_every_registered_metric_is_one_series_in_its_catalogue_unit_and_range(
    shanghai: Topology,
) -> None:
    world = SensorWorld(shanghai, random.Random(0))
    assert len(world.series) == sum(len(s.metrics) for s in shanghai.sensors)
    assert [p.sensor_id for p in world.places] == [s.id for s in shanghai.sensors]
    for place, sensor in zip(world.places, shanghai.sensors, strict=True):
        assert place.key == sensor.id.encode()
        assert [world.series[i].metric for i in place.series] == list(sensor.metrics)
    for series in world.series:
        metric = shanghai.metrics[series.metric]
        assert series.unit == metric.unit
        assert (series.lo, series.hi) == metric.range
        assert series.lo <= series.base <= series.hi


def test_baselines_are_the_profile_level_biased_per_sensor(shanghai: Topology) -> None:
    assert shanghai.metrics["pm25"].unit == "ug/m3"  # the profile's unit: no conversion
    world = SensorWorld(shanghai, random.Random(3))
    bases = [s.base for s in world.series if s.metric == "pm25"]
    assert len(bases) > 20
    assert all(38 * 0.85 <= b <= 38 * 1.15 for b in bases)  # bias up to 15 %
    assert len(set(bases)) == len(bases)
    again = SensorWorld(shanghai, random.Random(3))
    assert [s.base for s in again.series] == [s.base for s in world.series]


def test_a_sample_follows_the_curve_adds_the_delta_and_stays_in_range() -> None:
    draws: list[tuple[float, float]] = []

    def still(mu: float, sd: float) -> float:
        draws.append((mu, sd))
        return 0.0

    series = Series("traffic_speed", "km/h", 50.0, CURVES["speed"], 2.0, 1, 0.0, 100.0)
    # 08:30 local: halfway between the 08:00 (0.35) and 09:00 (0.55) levels.
    assert series.sample(8, 9, 0.5, 0.0, still) == pytest.approx(22.5)
    assert series.sample(8, 9, 0.5, -5.0, still) == pytest.approx(17.5)
    assert series.sample(8, 9, 0.5, 1000.0, still) == 100.0
    assert series.sample(8, 9, 0.5, -1000.0, still) == 0.0
    assert draws == [(0.0, 0.714 * 2.0)] * 4  # one noise step per sample


def test_districts_neighbours_and_the_nearest_sensor(demo: Topology) -> None:
    world = SensorWorld(demo, random.Random(0))
    assert world.districts == ("310101", "310104")
    ((code, km),) = world.neighbours("310101")
    assert code == "310104" and 6.0 < km < 7.5
    assert world.neighbours("310101", 0) == []
    with pytest.raises(ValueError, match="no sensors"):
        world.centroid("999999")
    noisy = world.sensors_in("310101", "noise_laeq")
    assert noisy and set(noisy) < set(world.sensors_in("310101"))
    assert world.sensors_in("310104", "noise_laeq") == []
    for place in world.places:
        assert world.nearest(place.lat, place.lon) == place


def test_typical_level_is_the_mean_base_else_30_percent_up_the_range(demo: Topology) -> None:
    world = SensorWorld(demo, random.Random(0))
    indices = world.district_series[("310101", "pm25")]
    mean = sum(world.series[i].base for i in indices) / len(indices)
    assert world.typical_level("310101", "pm25") == mean
    lo, hi = demo.metrics["noise_laeq"].range
    assert world.typical_level("310104", "noise_laeq") == lo + 0.3 * (hi - lo)


def test_distance_is_metres_on_the_ground() -> None:
    assert distance_m((31.0, 121.0), (32.0, 121.0)) == pytest.approx(EARTH_M_PER_DEG)
    east = distance_m((31.0, 121.0), (31.0, 122.0))
    assert east == pytest.approx(EARTH_M_PER_DEG * 0.857, rel=1e-3)  # cos 31 degrees
