"""The sensor world: every (sensor, metric) series with its baseline, noise and place.

Why: the rest of the simulator speaks of districts, sensors and typical levels; this is
the one place that turns a topology's registry into those. Each series gets a typical
urban level (Shanghai-like) for its metric, a per-sensor bias, a daily curve (see
:mod:`pipeline.sim.patterns`) and autocorrelated noise, clamped to the metric's range.
Metrics without a profile get a generic mid-range one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from pipeline.models import AreaLevel
from pipeline.sim.patterns import CURVES
from pipeline.topology import Metric, Topology
from pipeline.units import UnitError, convert

__all__ = ["EARTH_M_PER_DEG", "Place", "Profile", "Series", "SensorWorld", "distance_m"]

EARTH_M_PER_DEG = 111_320.0
"""Metres per degree of latitude (and of longitude at the equator)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A metric's typical level, daily curve and spread, in the unit they are written in."""

    unit: str  # the unit base/sd are written in; converted to the catalogue's unit
    base: float
    curve: str
    sd: float
    decimals: int = 1
    bias: float = 0.15  # sensors differ by up to this share of the base level


# Typical urban levels (Shanghai-like); metrics not listed get a generic mid-range profile.
PROFILES: dict[str, Profile] = {
    "pm25": Profile("ug/m3", 38, "particulate", 6),
    "pm10": Profile("ug/m3", 65, "particulate", 9),
    "o3": Profile("ug/m3", 70, "ozone", 8),
    "no2": Profile("ug/m3", 38, "exhaust", 5),
    "so2": Profile("ug/m3", 9, "particulate", 1.5),
    "co": Profile("mg/m3", 0.7, "exhaust", 0.08, 2),
    "noise_laeq": Profile("dB(A)", 66, "noise", 1.8, bias=0.05),
    "traffic_speed": Profile("km/h", 56, "speed", 3.5),
    "traffic_intensity": Profile("veh/h", 1500, "traffic", 60, 0),
    "occupancy": Profile("%", 38, "traffic", 2.5),
    "water_pressure": Profile("kPa", 320, "pressure", 4, bias=0.08),
    "water_flow": Profile("m3/h", 900, "demand", 30, 0),
    "ph": Profile("pH", 7.4, "flat", 0.08, 2, bias=0.03),
    "dissolved_oxygen": Profile("mg/l", 7.2, "oxygen", 0.25, 2, bias=0.1),
    "nh3n": Profile("mg/l", 0.45, "flat", 0.06, 3),
    "turbidity": Profile("NTU", 9, "flat", 1.5),
}


@dataclass(slots=True, eq=False)
class Series:
    """One (sensor, metric) stream's fixed parameters and noise state."""

    metric: str
    unit: str  # the metric's catalogue unit
    base: float  # typical level in that unit, this sensor's bias included
    curve: tuple[float, ...]  # hourly multipliers (see ``pipeline.sim.patterns``)
    sd: float  # spread of the noise
    decimals: int
    lo: float
    hi: float
    noise: float = 0.0  # current deviation from the level (autocorrelated)

    def sample(
        self, h: int, h2: int, frac: float, delta: float, gauss: Callable[[float, float], float]
    ) -> float:
        """The next value at a local hour of day (see ``hour_of_day``) plus ``delta``.

        Draws one Gaussian step of the noise (an AR(1) process), so call it exactly once
        per reading: the random stream, and so every later byte, depends on it.
        """
        curve = self.curve
        level = curve[h] + (curve[h2] - curve[h]) * frac
        self.noise = 0.7 * self.noise + gauss(0.0, 0.714 * self.sd)
        value = (self.base + self.noise) * level + delta
        return round(min(max(value, self.lo), self.hi), self.decimals)


class Place(NamedTuple):
    """A sensor where it stands, with the indices of its series."""

    sensor_id: str
    key: bytes
    lat: float
    lon: float
    area: str
    district: str | None
    series: tuple[int, ...]


def _series(metric_name: str, metric: Metric, rng: random.Random) -> Series:
    """A series for one registered metric: its profile in the catalogue unit, biased."""
    lo, hi = metric.range
    profile = PROFILES.get(metric_name)
    scale, shift = 1.0, 0.0
    if profile is not None:
        try:
            shift = convert(0.0, profile.unit, metric.unit)
            scale = convert(1.0, profile.unit, metric.unit) - shift
        except UnitError:
            profile = None
    if profile is None:
        profile = Profile(metric.unit, lo + 0.3 * (hi - lo), "flat", 0.03 * (hi - lo))
    bias = rng.uniform(1.0 - profile.bias, 1.0 + profile.bias)
    decimals = profile.decimals + max(0, -math.floor(math.log10(abs(scale) or 1)))
    return Series(
        metric_name,
        metric.unit,
        (profile.base * bias) * scale + shift,
        CURVES[profile.curve],
        abs(profile.sd * scale),
        decimals,
        lo,
        hi,
    )


class SensorWorld:
    """A topology's sensors as simulated series, indexed by district and metric.

    Building it draws one bias per series from ``rng``, in registry order.
    """

    def __init__(self, topology: Topology, rng: random.Random) -> None:
        self.topology = topology
        self.series: list[Series] = []
        self.places: list[Place] = []
        for sensor in topology.sensors:
            first = len(self.series)
            for metric_name in sensor.metrics:
                self.series.append(_series(metric_name, topology.metrics[metric_name], rng))
            district = topology.admin_codes(sensor.area).get(AreaLevel.district)
            self.places.append(
                Place(
                    sensor.id,
                    sensor.id.encode(),
                    sensor.lat,
                    sensor.lon,
                    sensor.area,
                    district,
                    tuple(range(first, len(self.series))),
                )
            )
        self.district_series = self._index_district_series()
        self.centroids = self._district_centroids()

    def _index_district_series(self) -> dict[tuple[str, str], list[int]]:
        index: dict[tuple[str, str], list[int]] = {}
        for place in self.places:
            if place.district is None:
                continue
            for i in place.series:
                index.setdefault((place.district, self.series[i].metric), []).append(i)
        return index

    def _district_centroids(self) -> dict[str, tuple[float, float]]:
        """Mean sensor position per district that has sensors (what an episode can touch)."""
        sums: dict[str, list[float]] = {}
        for place in self.places:
            if place.district is not None:
                acc = sums.setdefault(place.district, [0.0, 0.0, 0.0])
                acc[0] += place.lat
                acc[1] += place.lon
                acc[2] += 1
        return {code: (a[0] / a[2], a[1] / a[2]) for code, a in sorted(sums.items())}

    @property
    def districts(self) -> tuple[str, ...]:
        """Districts with at least one sensor, in code order."""
        return tuple(self.centroids)

    def centroid(self, district: str) -> tuple[float, float]:
        """The mean sensor position of a district; ValueError if it has no sensors."""
        try:
            return self.centroids[district]
        except KeyError:
            msg = f"district {district!r} has no sensors in topology {self.topology.id!r}"
            raise ValueError(msg) from None

    def sensors_in(self, district: str, metric: str | None = None) -> list[str]:
        """Ids of the sensors in a district (measuring ``metric`` when given)."""
        return [
            p.sensor_id
            for p in self.places
            if p.district == district
            and (metric is None or any(self.series[i].metric == metric for i in p.series))
        ]

    def neighbours(self, district: str, count: int = 2) -> list[tuple[str, float]]:
        """The nearest districts by centroid, ``(code, distance_km)``, nearest first."""
        here = self.centroid(district)
        others = [
            (code, distance_m(here, there) / 1000.0)
            for code, there in self.centroids.items()
            if code != district
        ]
        return sorted(others, key=lambda item: (item[1], item[0]))[:count]

    def nearest(self, lat: float, lon: float) -> Place:
        """The sensor standing closest to a point."""
        return min(self.places, key=lambda p: distance_m((lat, lon), (p.lat, p.lon)))

    def typical_level(self, district: str, metric: str) -> float:
        """The mean base of a metric's series in a district, else 30 % up its range."""
        indices = self.district_series.get((district, metric), [])
        if indices:
            return sum(self.series[i].base for i in indices) / len(indices)
        lo, hi = self.topology.metrics[metric].range
        return lo + 0.3 * (hi - lo)

    def series_of(self, metric: str, sensors: frozenset[str]) -> list[int]:
        """Indices of the series of ``metric`` at the listed sensors."""
        return [
            i
            for p in self.places
            if p.sensor_id in sensors
            for i in p.series
            if self.series[i].metric == metric
        ]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance: exact enough within a city."""
    mean_lat = math.radians((a[0] + b[0]) / 2)
    dy = (a[0] - b[0]) * EARTH_M_PER_DEG
    dx = (a[1] - b[1]) * EARTH_M_PER_DEG * math.cos(mean_lat)
    return math.hypot(dx, dy)
