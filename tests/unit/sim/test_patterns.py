"""Daily cycles: rush hours and nights show in the simulated values."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.sim.events import to_us
from pipeline.sim.patterns import CURVES, hour_of_day, utc_offset_s
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology
from tests.unit.sim.sim_world import MIDNIGHT_LOCAL, local_hour, subset, valid_docs


def test_rush_hour_speeds_are_lower_than_night(shanghai: Topology) -> None:
    topology = subset(shanghai, "traffic", 8)
    sim = Simulator(
        topology,
        seed=5,
        start=MIDNIGHT_LOCAL,
        interval=timedelta(minutes=10),
        reports_per_minute=0,
        episodes_per_hour=0,
    )
    docs = valid_docs(list(sim.events(until=MIDNIGHT_LOCAL + timedelta(days=1))))
    by_hour: dict[int, list[float]] = {}
    for doc in docs:
        if doc["metric"] == "traffic_speed":
            by_hour.setdefault(local_hour(doc), []).append(doc["value"])
    night = statistics.mean(v for h in (0, 1, 2, 3, 4) for v in by_hour[h])
    rush = statistics.mean(v for h in (7, 8, 17, 18) for v in by_hour[h])
    midday = statistics.mean(v for h in (11, 12, 13, 14) for v in by_hour[h])
    assert night > 45
    assert rush < 0.6 * night
    assert rush < midday < night
    intensity = [d for d in docs if d["metric"] == "traffic_intensity"]
    night_cars = statistics.mean(d["value"] for d in intensity if local_hour(d) in (1, 2, 3))
    rush_cars = statistics.mean(d["value"] for d in intensity if local_hour(d) == 8)
    assert rush_cars > 4 * night_cars


def test_hour_of_day_is_local_and_wraps_at_midnight() -> None:
    shanghai_s = utc_offset_s(datetime(2026, 6, 1, tzinfo=UTC), ZoneInfo("Asia/Shanghai"))
    assert shanghai_s == 8 * 3600
    half_past_eight = to_us(datetime(2026, 6, 1, 0, 30, tzinfo=UTC))  # 08:30 in Shanghai
    assert hour_of_day(half_past_eight, shanghai_s) == (8, 9, 0.5)
    assert hour_of_day(half_past_eight, 0) == (0, 1, 0.5)
    h, h2, frac = hour_of_day(to_us(datetime(2026, 6, 1, 15, 45, tzinfo=UTC)), shanghai_s)
    assert (h, h2) == (23, 0) and frac == 0.75


def test_summer_time_moves_the_local_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert utc_offset_s(datetime(2026, 1, 15, tzinfo=UTC), berlin) == 3600
    assert utc_offset_s(datetime(2026, 7, 15, tzinfo=UTC), berlin) == 7200


def test_every_curve_has_an_hour_for_each_hour_of_the_day() -> None:
    assert all(len(curve) == 24 for curve in CURVES.values())
    speed, traffic = CURVES["speed"], CURVES["traffic"]
    assert min(speed) in (speed[8], speed[18]) and max(traffic) in (traffic[8], traffic[17])
