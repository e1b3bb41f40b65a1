"""A deterministic city simulator: raw sensor readings and citizen reports as Kafka payloads.

Why: the pipeline needs realistic traffic to be developed, demonstrated and benchmarked
without a city attached. Everything here is a pure function of the topology, the seed and
the options (one ``random.Random(seed)``, a simulated clock): the same seed gives the same
bytes, so a test can force a pollution episode and assert what the pipeline makes of it.

The stream, in simulated-time order:

- every sensor emits every metric of its registry entry once per *round* (``interval``),
  sensors spread evenly over the round so event time never goes backwards; values follow
  daily cycles in the topology's local time (rush hours 7-9 and 17-19: speeds drop,
  traffic, NO2 and noise rise; particulates higher at night; ozone peaks in the
  afternoon), per-sensor bias and autocorrelated noise, clamped to the metric's range;
- *episodes* add to a metric in one district for a while: pollution drifts to the nearest
  districts (by centroid) after a lag proportional to distance; water-pressure drops,
  local noise and traffic jams stay put. ``Simulator.episode`` forces one; random ones
  come at ``episodes_per_hour``;
- a ``fault_rate`` share of readings is nonsense (wrong types, negative or absurd values,
  broken JSON, unknown sensors, bad units or times) so the dead-letter path has work;
- citizen reports arrive at ``reports_per_minute`` (simulated), mostly clustered around
  active problems (water leaks at a burst main, noise complaints at a noisy site), in
  Chinese, some urgent, some carrying a (fake) phone or checksummed ID number for the
  PII masking.

Canonical JSON shapes (field order as produced)::

    reading: {"event_id", "sensor_id", "metric", "value", "unit", "observed_at"
              [, "lat", "lon"]}
    report:  {"report_id", "channel", "category", "description" [, "lat", "lon"], "area",
              "reported_at", "urgent"}

Report positions always lie inside the topology's boundaries; a topology without
boundaries gets ``area`` only (a point could not be resolved to an area there).
Event ids are ``<run token>-<sequence>`` (token = hash of seed and start), report ids
``rpt-<run token>-<number>``; keys are the sensor id / report id.

Times are ISO 8601 UTC with microseconds and a ``Z`` (``2026-11-25T08:00:00.000000Z``).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import orjson

from pipeline.ingest.geo import AreaResolver
from pipeline.ingest.units import UnitError, convert
from pipeline.models import AreaLevel
from pipeline.topology import ReportCategory, Topology

__all__ = [
    "FAULT_KINDS",
    "Episode",
    "SimEvent",
    "Simulator",
    "resident_id_check",
]

_T = TypeVar("_T")
_US = 1_000_000
_EARTH_M_PER_DEG = 111_320.0

# Hourly multipliers (local time, index = hour); interpolated linearly between hours.
# fmt: off
_CURVES: dict[str, tuple[float, ...]] = {
    "flat": (1.0,) * 24,
    "particulate": (1.25, 1.3, 1.3, 1.25, 1.2, 1.15, 1.15, 1.3, 1.35, 1.2, 1.0, 0.9,
                    0.85, 0.8, 0.8, 0.8, 0.85, 1.05, 1.2, 1.2, 1.15, 1.15, 1.2, 1.25),
    "ozone": (0.4, 0.35, 0.3, 0.3, 0.3, 0.35, 0.45, 0.6, 0.8, 1.0, 1.25, 1.5,
              1.7, 1.85, 1.9, 1.8, 1.6, 1.3, 1.0, 0.8, 0.65, 0.55, 0.5, 0.45),
    "exhaust": (0.8, 0.7, 0.65, 0.6, 0.65, 0.8, 1.1, 1.5, 1.6, 1.3, 1.1, 1.0,
                1.0, 1.0, 1.0, 1.05, 1.2, 1.5, 1.6, 1.3, 1.1, 1.0, 0.95, 0.9),
    "speed": (1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 0.45, 0.35, 0.55, 0.7, 0.72,
              0.7, 0.72, 0.7, 0.68, 0.6, 0.42, 0.35, 0.5, 0.72, 0.85, 0.92, 0.97),
    "traffic": (0.12, 0.08, 0.06, 0.05, 0.07, 0.15, 0.45, 0.95, 1.0, 0.8, 0.65, 0.62,
                0.6, 0.62, 0.62, 0.66, 0.8, 1.0, 0.98, 0.75, 0.55, 0.4, 0.28, 0.18),
    "noise": (0.78, 0.76, 0.75, 0.75, 0.76, 0.8, 0.9, 1.0, 1.02, 0.98, 0.96, 0.96,
              0.95, 0.96, 0.96, 0.97, 0.99, 1.02, 1.02, 0.98, 0.95, 0.92, 0.86, 0.8),
    "demand": (0.45, 0.4, 0.38, 0.38, 0.42, 0.6, 0.95, 1.15, 1.1, 0.95, 0.9, 0.95,
               1.0, 0.92, 0.88, 0.88, 0.92, 1.0, 1.1, 1.15, 1.05, 0.9, 0.7, 0.55),
    "pressure": (1.015, 1.02, 1.022, 1.022, 1.018, 1.0, 0.965, 0.945, 0.95, 0.965, 0.97,
                 0.965, 0.96, 0.968, 0.972, 0.972, 0.968, 0.96, 0.95, 0.945, 0.955, 0.97,
                 0.99, 1.005),
    "oxygen": (0.9, 0.88, 0.86, 0.85, 0.85, 0.86, 0.9, 0.95, 1.0, 1.05, 1.1, 1.13,
               1.15, 1.16, 1.15, 1.12, 1.08, 1.03, 0.99, 0.96, 0.94, 0.92, 0.91, 0.9),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class _Profile:
    unit: str  # the unit base/sd are written in; converted to the catalogue's unit
    base: float
    curve: str
    sd: float
    decimals: int = 1
    bias: float = 0.15  # sensors differ by up to this share of the base level


# Typical urban levels (Shanghai-like); metrics not listed get a generic mid-range profile.
_PROFILES: dict[str, _Profile] = {
    "pm25": _Profile("ug/m3", 38, "particulate", 6),
    "pm10": _Profile("ug/m3", 65, "particulate", 9),
    "o3": _Profile("ug/m3", 70, "ozone", 8),
    "no2": _Profile("ug/m3", 38, "exhaust", 5),
    "so2": _Profile("ug/m3", 9, "particulate", 1.5),
    "co": _Profile("mg/m3", 0.7, "exhaust", 0.08, 2),
    "noise_laeq": _Profile("dB(A)", 66, "noise", 1.8, bias=0.05),
    "traffic_speed": _Profile("km/h", 56, "speed", 3.5),
    "traffic_intensity": _Profile("veh/h", 1500, "traffic", 60, 0),
    "occupancy": _Profile("%", 38, "traffic", 2.5),
    "water_pressure": _Profile("kPa", 320, "pressure", 4, bias=0.08),
    "water_flow": _Profile("m3/h", 900, "demand", 30, 0),
    "ph": _Profile("pH", 7.4, "flat", 0.08, 2, bias=0.03),
    "dissolved_oxygen": _Profile("mg/l", 7.2, "oxygen", 0.25, 2, bias=0.1),
    "nh3n": _Profile("mg/l", 0.45, "flat", 0.06, 3),
    "turbidity": _Profile("NTU", 9, "flat", 1.5),
}
# Pollution drifts with the wind; everything else is local.
_DRIFTING = frozenset({"pm25", "pm10", "o3", "no2", "so2", "co"})
# Which report category a problem on a metric makes citizens file (when the topology has it).
_PROBLEM_CATEGORIES: dict[str, tuple[tuple[str, float], ...]] = {
    "water_pressure": (("water_leak", 0.85), ("flooding", 0.15)),
    "noise_laeq": (("noise_complaint", 1.0),),
}

FAULT_KINDS: tuple[str, ...] = (
    "wrong_type",
    "negative",
    "absurd",
    "broken_json",
    "unknown_sensor",
    "bad_unit",
    "bad_time",
)

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "water_leak": (
        "{place}路边自来水管爆裂，水一直往外冒，地面已经积水",
        "{place}小区门口地下渗水，家里水压很低",
        "{place}附近人行道上水管漏水，已经流了半个多小时",
    ),
    "flooding": (
        "{place}路口积水很深，车辆无法通行，请尽快处理",
        "{place}地下通道进水，行人被困",
    ),
    "noise_complaint": (
        "{place}工地深夜还在施工，噪音很大，影响休息",
        "{place}附近商铺音响声音太大，持续好几个小时",
        "{place}夜间有机械作业，吵得睡不着",
    ),
    "road_damage": (
        "{place}路面坑洼严重，电动车容易摔倒",
        "{place}道路塌陷一块，已有车辆受损",
    ),
    "illegal_dumping": ("{place}路边有人乱倒建筑垃圾", "{place}绿化带里堆满生活垃圾，气味很大"),
    "streetlight_out": ("{place}一整排路灯不亮，晚上很危险", "{place}路灯忽明忽暗好几天了"),
    "manhole_cover": ("{place}人行道上井盖缺失，很危险，请马上处理",),
    "gas_smell": ("{place}楼道里有很浓的燃气味，请立即派人", "{place}餐馆后门闻到煤气味"),
}
_CHANNELS: tuple[tuple[str, float], ...] = (("hotline", 0.5), ("app", 0.35), ("wechat", 0.15))
_MOBILE_HEADS = ("138", "139", "136", "150", "151", "158", "186", "188", "177", "199")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


class SimEvent(NamedTuple):
    """One payload for a raw topic; ``fault`` names the nonsense injected, if any."""

    topic: str
    key: bytes
    value: bytes
    at_us: int  # simulated event time, microseconds since the epoch (UTC)
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """An added amount on one metric in one district (or at listed sensors) for a while.

    ``peak`` is in the metric's catalogue unit (negative for a drop). The strength is a
    trapezoid: 20 % ramp up, plateau, 20 % ramp down. ``spread`` lists the neighbouring
    districts it reaches as ``(district, lag, factor)``. Reports of ``category`` gather
    around ``hotspot`` while it is active.
    """

    district: str
    metric: str
    start: datetime
    duration: timedelta
    peak: float
    spread: tuple[tuple[str, timedelta, float], ...] = ()
    sensors: frozenset[str] | None = None
    hotspot: tuple[float, float] | None = None
    category: str | None = None

    @property
    def end(self) -> datetime:
        """When the episode is over everywhere it reached."""
        lag = max((lag for _, lag, _ in self.spread), default=timedelta(0))
        return self.start + lag + self.duration

    def strength(self, at: datetime, lag: timedelta = timedelta(0)) -> float:
        """0..1 at ``at``, for a place the episode reaches ``lag`` after it starts."""
        return _trapezoid((at - self.start - lag) / self.duration)


def _trapezoid(u: float) -> float:
    if u <= 0.0 or u >= 1.0:
        return 0.0
    return min(1.0, u / 0.2, (1.0 - u) / 0.2)


def resident_id_check(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us // _US, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{us % _US:06d}Z"
    )


class _Series:
    """One (sensor, metric) stream's fixed parameters and noise state."""

    __slots__ = ("base", "curve", "decimals", "hi", "lo", "metric", "noise", "sd", "unit")

    def __init__(
        self,
        metric: str,
        unit: str,
        base: float,
        curve: tuple[float, ...],
        sd: float,
        decimals: int,
        lo: float,
        hi: float,
    ) -> None:
        self.metric = metric
        self.unit = unit
        self.base = base
        self.curve = curve
        self.sd = sd
        self.decimals = decimals
        self.lo = lo
        self.hi = hi
        self.noise = 0.0


class _Place(NamedTuple):
    sensor_id: str
    key: bytes
    lat: float
    lon: float
    area: str
    district: str | None
    series: tuple[int, ...]


class Simulator:
    """The simulated city; iterate :meth:`events` once for the stream."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        start: datetime | None = None,
        interval: timedelta = timedelta(seconds=60),
        fault_rate: float = 0.0,
        reports_per_minute: float = 1.0,
        episodes_per_hour: float = 1.0,
        problem_share: float = 0.7,
        include_location: bool = False,
        drift_kmh: float = 20.0,
    ) -> None:
        if not topology.sensors:
            msg = f"topology {topology.id!r} has no sensors to simulate"
            raise ValueError(msg)
        checks = (
            (interval.total_seconds() > 0, "interval must be positive"),
            (0.0 <= fault_rate <= 1.0, "fault_rate must be between 0 and 1"),
            (reports_per_minute >= 0, "reports_per_minute must not be negative"),
            (episodes_per_hour >= 0, "episodes_per_hour must not be negative"),
            (0.0 <= problem_share <= 1.0, "problem_share must be between 0 and 1"),
            (drift_kmh > 0, "drift_kmh must be positive"),
        )
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None:
            msg = "start must be timezone-aware"
            raise ValueError(msg)
        self.topology = topology
        self.seed = seed
        self.start = start.astimezone(UTC)
        self.interval = interval
        self.fault_rate = fault_rate
        self.reports_per_minute = reports_per_minute
        self.episodes_per_hour = episodes_per_hour
        self.problem_share = problem_share
        self.include_location = include_location
        self.drift_kmh = drift_kmh
        self.sensor_topic = topology.topics.name("raw_sensors")
        self.report_topic = topology.topics.name("raw_reports")
        self._rng = random.Random(seed)  # noqa: S311  # a simulation, not cryptography
        self._tz = ZoneInfo(topology.timezone)
        self._token = hashlib.blake2b(
            f"{seed}|{self.start.isoformat()}".encode(), digest_size=4
        ).hexdigest()
        self._series: list[_Series] = []
        self._places = self._build_places()
        self.readings_per_round = len(self._series)
        self._district_series = self._index_district_series()
        self._centroids = self._district_centroids()
        self._episodes: list[Episode] = []
        self._live: list[Episode] = []  # not over yet
        self._categories = {c.id: c for c in topology.report_categories}
        self._geo = AreaResolver(topology) if topology.boundary_features() else None
        self.faults: Counter[str] = Counter()
        """Nonsense injected so far, by kind."""
        self.reports = 0
        """Citizen reports made so far."""

    @classmethod
    def for_rate(
        cls, topology: Topology, *, rate: float, speedup: float = 1.0, **options: object
    ) -> Simulator:
        """A simulator whose sampling interval makes ``rate`` readings per wall second.

        A round of N readings at ``rate`` events/s takes N / rate wall seconds, which is
        ``speedup`` times as much simulated time.
        """
        if rate <= 0 or speedup <= 0:
            msg = "rate and speedup must be positive"
            raise ValueError(msg)
        count = sum(len(s.metrics) for s in topology.sensors)
        interval = timedelta(seconds=max(count / rate * speedup, 1e-6 * count))
        return cls(topology, interval=interval, **options)  # type: ignore[arg-type]  # forwarded keywords

    # ------------------------------------------------------------------ set-up

    def _build_places(self) -> list[_Place]:
        rng = self._rng
        places = []
        for sensor in self.topology.sensors:
            admin = self.topology.admin_codes(sensor.area)
            indices = []
            for metric_name in sensor.metrics:
                metric = self.topology.metrics[metric_name]
                lo, hi = metric.range
                profile = _PROFILES.get(metric_name)
                scale, shift = 1.0, 0.0
                if profile is not None:
                    try:
                        shift = convert(0.0, profile.unit, metric.unit)
                        scale = convert(1.0, profile.unit, metric.unit) - shift
                    except UnitError:
                        profile = None
                if profile is None:
                    profile = _Profile(metric.unit, lo + 0.3 * (hi - lo), "flat", 0.03 * (hi - lo))
                bias = rng.uniform(1.0 - profile.bias, 1.0 + profile.bias)
                decimals = profile.decimals + max(0, -math.floor(math.log10(abs(scale) or 1)))
                indices.append(len(self._series))
                self._series.append(
                    _Series(
                        metric_name,
                        metric.unit,
                        (profile.base * bias) * scale + shift,
                        _CURVES[profile.curve],
                        abs(profile.sd * scale),
                        decimals,
                        lo,
                        hi,
                    )
                )
            places.append(
                _Place(
                    sensor.id,
                    sensor.id.encode(),
                    sensor.lat,
                    sensor.lon,
                    sensor.area,
                    admin.get(AreaLevel.district),
                    tuple(indices),
                )
            )
        return places

    def _index_district_series(self) -> dict[tuple[str, str], list[int]]:
        index: dict[tuple[str, str], list[int]] = {}
        for place in self._places:
            if place.district is None:
                continue
            for i in place.series:
                index.setdefault((place.district, self._series[i].metric), []).append(i)
        return index

    def _district_centroids(self) -> dict[str, tuple[float, float]]:
        """Mean sensor position per district that has sensors (what an episode can touch)."""
        sums: dict[str, list[float]] = {}
        for place in self._places:
            if place.district is not None:
                acc = sums.setdefault(place.district, [0.0, 0.0, 0.0])
                acc[0] += place.lat
                acc[1] += place.lon
                acc[2] += 1
        return {code: (a[0] / a[2], a[1] / a[2]) for code, a in sorted(sums.items())}

    # ------------------------------------------------------------------ scenario API

    @property
    def districts(self) -> tuple[str, ...]:
        """Districts with at least one sensor, in code order."""
        return tuple(self._centroids)

    def sensors_in(self, district: str, metric: str | None = None) -> list[str]:
        """Ids of the sensors in a district (measuring ``metric`` when given)."""
        return [
            p.sensor_id
            for p in self._places
            if p.district == district
            and (metric is None or any(self._series[i].metric == metric for i in p.series))
        ]

    def neighbours(self, district: str, count: int = 2) -> list[tuple[str, float]]:
        """The nearest districts by centroid, ``(code, distance_km)``, nearest first."""
        here = self._centroid(district)
        others = [
            (code, _distance_m(here, there) / 1000.0)
            for code, there in self._centroids.items()
            if code != district
        ]
        return sorted(others, key=lambda item: (item[1], item[0]))[:count]

    def _centroid(self, district: str) -> tuple[float, float]:
        try:
            return self._centroids[district]
        except KeyError:
            msg = f"district {district!r} has no sensors in topology {self.topology.id!r}"
            raise ValueError(msg) from None

    def episode(
        self,
        *,
        district: str,
        metric: str = "pm25",
        start: datetime | None = None,
        duration: timedelta = timedelta(minutes=30),
        peak: float | None = None,
        spread: bool | None = None,
        sensors: Sequence[str] | None = None,
        category: str | None = None,
    ) -> Episode:
        """Force an episode (deterministic: it draws nothing from the random stream).

        ``peak`` defaults to four times the metric's typical level (a drop to 45 % for
        water pressure and traffic speed); ``spread`` defaults to True for air pollutants,
        which then reach the two nearest districts (factors 0.7, 0.5) after a lag of
        distance / ``drift_kmh``. ``sensors`` confines it to those sensors (a noisy site);
        ``category`` overrides the report category citizens file about it.
        """
        center = self._centroid(district)
        if metric not in self.topology.metrics:
            msg = f"metric {metric!r} is not in topology {self.topology.id!r}"
            raise ValueError(msg)
        if duration.total_seconds() <= 0:
            msg = "duration must be positive"
            raise ValueError(msg)
        if peak is None:
            peak = self._default_peak(district, metric)
        drifting = metric in _DRIFTING if spread is None else spread
        reach: tuple[tuple[str, timedelta, float], ...] = ()
        if drifting and sensors is None:
            reach = tuple(
                (code, timedelta(hours=km / self.drift_kmh), factor)
                for (code, km), factor in zip(self.neighbours(district), (0.7, 0.5), strict=False)
            )
        hotspot = center
        members = self.sensors_in(district, metric)
        if sensors is not None:
            members = [s for s in sensors if self.topology.sensor(s) is not None]
            if not members:
                msg = f"none of the sensors {list(sensors)} is registered"
                raise ValueError(msg)
        if members:
            first = self.topology.sensor(members[0])
            if first is not None:
                hotspot = (first.lat, first.lon)
        if category is None:
            choices = _PROBLEM_CATEGORIES.get(metric, ())
            category = next((c for c, _ in choices if c in self._categories), None)
        elif category not in self._categories:
            msg = f"report category {category!r} is not in topology {self.topology.id!r}"
            raise ValueError(msg)
        episode = Episode(
            district=district,
            metric=metric,
            start=(self.start if start is None else start).astimezone(UTC),
            duration=duration,
            peak=float(peak),
            spread=reach,
            sensors=frozenset(sensors) if sensors is not None else None,
            hotspot=hotspot,
            category=category,
        )
        self._episodes.append(episode)
        self._live.append(episode)
        return episode

    def pressure_drop(
        self,
        *,
        district: str,
        start: datetime | None = None,
        duration: timedelta = timedelta(minutes=30),
        drop: float | None = None,
    ) -> Episode:
        """A burst main: pressure falls (by ``drop`` kPa-equivalent) and flow rises."""
        episode = self.episode(
            district=district,
            metric="water_pressure",
            start=start,
            duration=duration,
            peak=None if drop is None else -abs(drop),
        )
        if "water_flow" in self.topology.metrics and self.sensors_in(district, "water_flow"):
            self.episode(
                district=district,
                metric="water_flow",
                start=start,
                duration=duration,
                peak=self._default_peak(district, "water_flow") / 6.0,
                spread=False,
            )
        return episode

    def _default_peak(self, district: str, metric: str) -> float:
        indices = self._district_series.get((district, metric), [])
        if indices:
            typical = sum(self._series[i].base for i in indices) / len(indices)
        else:
            lo, hi = self.topology.metrics[metric].range
            typical = lo + 0.3 * (hi - lo)
        if metric in ("water_pressure", "traffic_speed", "dissolved_oxygen"):
            return -0.55 * typical
        return 3.0 * typical

    @property
    def episodes(self) -> tuple[Episode, ...]:
        """Every episode so far (forced and random)."""
        return tuple(self._episodes)

    # ------------------------------------------------------------------ the stream

    def events(self, until: datetime | None = None) -> Iterator[SimEvent]:
        """The stream in simulated-time order, up to (not including) ``until``."""
        rng = self._rng
        gauss = rng.gauss
        rand = rng.random
        dumps = orjson.dumps
        series = self._series
        places = self._places
        n_places = len(places)
        topic = self.sensor_topic
        fault_rate = self.fault_rate
        with_location = self.include_location
        token = self._token
        start_us = _to_us(self.start)
        until_us = None if until is None else _to_us(until)
        interval_us = max(1, round(self.interval.total_seconds() * _US))
        report_rate = self.reports_per_minute / 60.0 if self._categories else 0.0
        next_report = self._next_gap(start_us, report_rate)
        next_episode = self._next_gap(start_us, self.episodes_per_hour / 3600.0)
        zero = [0.0] * len(series)
        seq = 0
        last_sec = -1
        prefix = ""
        round_no = 0
        while True:
            round_us = start_us + round_no * interval_us
            round_no += 1
            if until_us is not None and round_us >= until_us:
                return
            while next_episode is not None and next_episode <= round_us:
                self._random_episode(_from_us(next_episode))
                next_episode = self._next_gap(next_episode, self.episodes_per_hour / 3600.0)
            middle = _from_us(round_us + interval_us // 2)
            deltas, problems = self._effects(middle, zero)
            offset = middle.astimezone(self._tz).utcoffset()
            tz_s = 0 if offset is None else int(offset.total_seconds())
            for k, place in enumerate(places):
                t = round_us + (k * interval_us) // n_places
                if until_us is not None and t >= until_us:
                    return
                while next_report is not None and next_report <= t:
                    self.reports += 1
                    yield self._report(next_report, self.reports, problems)
                    next_report = self._next_gap(next_report, report_rate)
                sec = t // _US
                if sec != last_sec:
                    last_sec = sec
                    prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                stamp = f"{prefix}.{t % _US:06d}Z"
                hour = ((sec + tz_s) % 86400 + (t % _US) / _US) / 3600.0
                h = int(hour)
                frac = hour - h
                h2 = (h + 1) % 24
                for i in place.series:
                    s = series[i]
                    curve = s.curve
                    level = curve[h] + (curve[h2] - curve[h]) * frac
                    s.noise = 0.7 * s.noise + gauss(0.0, 0.714 * s.sd)
                    value = (s.base + s.noise) * level + deltas[i]
                    value = round(min(max(value, s.lo), s.hi), s.decimals)
                    seq += 1
                    doc: dict[str, object] = {
                        "event_id": f"{token}-{seq}",
                        "sensor_id": place.sensor_id,
                        "metric": s.metric,
                        "value": value,
                        "unit": s.unit,
                        "observed_at": stamp,
                    }
                    if with_location:
                        doc["lat"] = place.lat
                        doc["lon"] = place.lon
                    if fault_rate and rand() < fault_rate:
                        yield self._fault(doc, place, s, t)
                    else:
                        yield SimEvent(topic, place.key, dumps(doc), t)

    def _next_gap(self, after_us: int, per_second: float) -> int | None:
        if per_second <= 0:
            return None
        return after_us + max(1, round(self._rng.expovariate(per_second) * _US))

    def _effects(
        self, at: datetime, zero: list[float]
    ) -> tuple[list[float], list[tuple[Episode, float]]]:
        """Per-series additions at ``at`` and the problems citizens can see (with strength)."""
        deltas = zero
        problems: list[tuple[Episode, float]] = []
        self._live = [ep for ep in self._live if ep.end > at]
        for ep in self._live:
            if at < ep.start:
                continue
            reach = ((ep.district, timedelta(0), 1.0), *ep.spread)
            for district, lag, factor in reach:
                strength = ep.strength(at, lag) * factor
                if strength <= 0.0:
                    continue
                if deltas is zero:
                    deltas = list(zero)
                for i in self._targets(ep, district):
                    deltas[i] += ep.peak * strength
                if district == ep.district and ep.category:
                    problems.append((ep, strength))
        return deltas, problems

    def _targets(self, ep: Episode, district: str) -> list[int]:
        if ep.sensors is None:
            return self._district_series.get((district, ep.metric), [])
        return [
            i
            for p in self._places
            if p.sensor_id in ep.sensors
            for i in p.series
            if self._series[i].metric == ep.metric
        ]

    def _random_episode(self, at: datetime) -> None:
        """One random problem: pollution (drifts), a burst main, a noisy site or a jam."""
        rng = self._rng
        kinds = [
            (kind, metric)
            for kind, metric in (
                ("pollution", "pm25"),
                ("pollution", "no2"),
                ("pressure", "water_pressure"),
                ("noise", "noise_laeq"),
                ("jam", "traffic_speed"),
            )
            if any(key[1] == metric for key in self._district_series)
        ]
        if not kinds:
            return
        kind, metric = rng.choice(kinds)
        district = rng.choice(sorted({d for d, m in self._district_series if m == metric}))
        duration = timedelta(minutes=rng.uniform(15.0, 60.0))
        scale = rng.uniform(0.8, 1.3)
        if kind == "pressure":
            self.pressure_drop(
                district=district,
                start=at,
                duration=duration,
                drop=-self._default_peak(district, metric) * scale,
            )
        elif kind == "noise":
            site = rng.choice(self.sensors_in(district, metric))
            self.episode(
                district=district,
                metric=metric,
                start=at,
                duration=duration,
                peak=rng.uniform(12.0, 22.0),
                sensors=[site],
            )
        else:
            self.episode(
                district=district,
                metric=metric,
                start=at,
                duration=duration,
                peak=self._default_peak(district, metric) * scale,
            )

    def _fault(self, doc: dict[str, object], place: _Place, s: _Series, t: int) -> SimEvent:
        """Nonsense a broken sensor or gateway sends, in place of one good reading."""
        rng = self._rng
        kind = rng.choice(FAULT_KINDS)
        key = place.key
        value = float(doc["value"])  # type: ignore[arg-type]  # set just above as a float
        if kind == "negative" and s.lo < 0:
            kind = "absurd"
        if kind == "wrong_type":
            doc["value"] = rng.choice((str(value), None, True, [value]))
        elif kind == "negative":
            doc["value"] = -(abs(value) + round(rng.uniform(1.0, 50.0), 1))
        elif kind == "absurd":
            doc["value"] = round(max(abs(s.hi), 1.0) * rng.uniform(10.0, 1000.0), 1)
        elif kind == "unknown_sensor":
            ghost = f"ghost-{rng.randrange(10_000):04d}"
            doc["sensor_id"] = ghost
            doc.pop("lat", None)  # with a position, an unregistered sensor would be placed
            doc.pop("lon", None)
            key = ghost.encode()
        elif kind == "bad_unit":
            doc["unit"] = rng.choice(("furlong/fortnight", "ppm-ish", "??"))
        elif kind == "bad_time":
            stamp = str(doc["observed_at"])
            doc["observed_at"] = rng.choice(("yesterday", stamp[:-1], "2026-13-45T99:00:00Z"))
        self.faults[kind] += 1
        payload = orjson.dumps(doc)
        if kind == "broken_json":
            payload = payload[: rng.randrange(1, len(payload) - 1)]
        return SimEvent(self.sensor_topic, key, payload, t, kind)

    # ------------------------------------------------------------------ citizen reports

    def _report(self, t: int, number: int, problems: list[tuple[Episode, float]]) -> SimEvent:
        rng = self._rng
        categories = self.topology.report_categories
        if problems and rng.random() < self.problem_share:
            episode = _weighted(rng, [(ep, w) for ep, w in problems])
            options = _PROBLEM_CATEGORIES.get(episode.metric, ())
            names = [(c, w) for c, w in options if c in self._categories]
            category = episode.category or ""
            if names and category == names[0][0]:
                category = _weighted(rng, names)
            lat0, lon0 = episode.hotspot or self._centroid(episode.district)
            point = _jitter(rng, lat0, lon0, 120.0)
            place = self._nearest(*point)
            where = self._locate(point, (lat0, lon0))
            return self._report_event(t, number, self._categories[category], place, where)
        weights = [(c, 0.15 if c.urgent else 1.0) for c in categories]
        chosen = _weighted(rng, weights)
        place = rng.choice(self._places)
        point = _jitter(rng, place.lat, place.lon, 400.0)
        where = self._locate(point, (place.lat, place.lon))
        return self._report_event(t, number, chosen, place, where)

    def _locate(
        self, point: tuple[float, float], anchor: tuple[float, float]
    ) -> tuple[float, float] | None:
        """A position inside the topology's boundaries: the point, else its anchor, else None.

        Without boundaries a position cannot be resolved to an area, so the report names
        its ``area`` only (it then cannot join a radius cluster).
        """
        if self._geo is None:
            return None
        for lat, lon in (point, anchor):
            if self._geo.smallest(lat, lon) is not None:
                return lat, lon
        return None

    def _report_event(
        self,
        t: int,
        number: int,
        cat: ReportCategory,
        place: _Place,
        where: tuple[float, float] | None,
    ) -> SimEvent:
        rng = self._rng
        report_id = f"rpt-{self._token}-{number:06d}"
        name = self.topology.area(place.area).name
        templates = _TEMPLATES.get(cat.id) or (f"{{place}}附近发现{cat.name}，请尽快派人处理",)
        text = rng.choice(templates).format(place=name)
        roll = rng.random()
        if roll < 0.2:
            text += f"，联系电话{self._mobile()}"
        elif roll < 0.25:
            text += f"，座机021-{rng.randrange(5, 7)}{rng.randrange(10**6, 10**7)}"
        elif roll < 0.3:
            text += f"，我是业主，身份证号{self._resident_id(place)}，请回电"
        urgent = cat.urgent or rng.random() < 0.03
        doc: dict[str, object] = {
            "report_id": report_id,
            "channel": _weighted(rng, list(_CHANNELS)),
            "category": cat.id,
            "description": text,
        }
        if where is not None:
            doc["lat"] = round(where[0], 6)
            doc["lon"] = round(where[1], 6)
        doc |= {
            "area": place.area,
            "reported_at": _iso(t),
            "urgent": urgent,
        }
        return SimEvent(self.report_topic, report_id.encode(), orjson.dumps(doc), t)

    def _mobile(self) -> str:
        rng = self._rng
        head = rng.choice(_MOBILE_HEADS)
        mid, tail = f"{rng.randrange(10_000):04d}", f"{rng.randrange(10_000):04d}"
        return rng.choice((f"{head}{mid}{tail}", f"+86 {head}{mid}{tail}", f"{head}-{mid}-{tail}"))

    def _resident_id(self, place: _Place) -> str:
        """A fake but checksummed GB 11643 number, born 1950-2005, registered locally."""
        rng = self._rng
        region = (place.district or place.area)[:6]
        if not (region.isdigit() and len(region) == 6):
            region = "310101"
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        first17 = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
        return first17 + resident_id_check(first17)

    def _nearest(self, lat: float, lon: float) -> _Place:
        return min(self._places, key=lambda p: _distance_m((lat, lon), (p.lat, p.lon)))


def _weighted(rng: random.Random, options: Sequence[tuple[_T, float]]) -> _T:
    total = sum(w for _, w in options)
    pick = rng.random() * total
    for item, weight in options:
        pick -= weight
        if pick < 0:
            return item
    return options[-1][0]


def _jitter(rng: random.Random, lat: float, lon: float, sigma_m: float) -> tuple[float, float]:
    dy = rng.gauss(0.0, sigma_m)
    dx = rng.gauss(0.0, sigma_m)
    lat2 = lat + dy / _EARTH_M_PER_DEG
    lon2 = lon + dx / (_EARTH_M_PER_DEG * max(math.cos(math.radians(lat)), 0.01))
    return max(-90.0, min(90.0, lat2)), max(-180.0, min(180.0, lon2))


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance: exact enough within a city."""
    mean_lat = math.radians((a[0] + b[0]) / 2)
    dy = (a[0] - b[0]) * _EARTH_M_PER_DEG
    dx = (a[1] - b[1]) * _EARTH_M_PER_DEG * math.cos(mean_lat)
    return math.hypot(dx, dy)


def _to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _US + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
