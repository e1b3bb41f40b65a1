"""Episodes: pollution, burst mains, noisy sites and jams, forced or at random.

Why: the pipeline exists to notice problems, so the simulated city must have some, and a
test must be able to force one and know exactly where and when it happens. An episode
adds to a metric in one district for a while: pollution drifts to the nearest districts
(by centroid) after a lag proportional to distance; water-pressure drops, local noise and
traffic jams stay put. Forcing one draws nothing from the random stream; random ones
(drawn by the simulator at ``episodes_per_hour``) do.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.sim.world import SensorWorld
from pipeline.topology import Topology

__all__ = ["DRIFTING", "PROBLEM_CATEGORIES", "Episode", "Scenario"]

# Pollution drifts with the wind; everything else is local.
DRIFTING = frozenset({"pm25", "pm10", "o3", "no2", "so2", "co"})
# Which report category a problem on a metric makes citizens file (when the topology has it).
PROBLEM_CATEGORIES: dict[str, tuple[tuple[str, float], ...]] = {
    "water_pressure": (("water_leak", 0.85), ("flooding", 0.15)),
    "noise_laeq": (("noise_complaint", 1.0),),
}
# Metrics whose problems are drops; the others' problems are rises.
_DROPPING = ("water_pressure", "traffic_speed", "dissolved_oxygen")
# What a random episode can be: (kind, metric), where the topology measures the metric.
_RANDOM_KINDS = (
    ("pollution", "pm25"),
    ("pollution", "no2"),
    ("pressure", "water_pressure"),
    ("noise", "noise_laeq"),
    ("jam", "traffic_speed"),
)

Reach = tuple[tuple[str, timedelta, float], ...]


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
    spread: Reach = ()
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


class Scenario:
    """The city's districts and sensors, and the episodes that happen in it.

    The scenario API of :class:`~pipeline.sim.simulator.Simulator`, which adds the stream.
    ``categories`` are the report category ids of the topology.
    """

    def __init__(
        self,
        world: SensorWorld,
        rng: random.Random,
        *,
        start: datetime,
        drift_kmh: float,
        categories: Collection[str],
    ) -> None:
        self.topology: Topology = world.topology
        self.start = start
        self.drift_kmh = drift_kmh
        self._world = world
        self._rng = rng
        self._categories = categories
        self._episodes: list[Episode] = []
        self._live: list[Episode] = []  # not over yet

    @property
    def districts(self) -> tuple[str, ...]:
        """Districts with at least one sensor, in code order."""
        return self._world.districts

    def sensors_in(self, district: str, metric: str | None = None) -> list[str]:
        """Ids of the sensors in a district (measuring ``metric`` when given)."""
        return self._world.sensors_in(district, metric)

    def neighbours(self, district: str, count: int = 2) -> list[tuple[str, float]]:
        """The nearest districts by centroid, ``(code, distance_km)``, nearest first."""
        return self._world.neighbours(district, count)

    @property
    def episodes(self) -> tuple[Episode, ...]:
        """Every episode so far (forced and random)."""
        return tuple(self._episodes)

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
        self._world.centroid(district)  # refuses a district without sensors
        if metric not in self.topology.metrics:
            msg = f"metric {metric!r} is not in topology {self.topology.id!r}"
            raise ValueError(msg)
        if duration.total_seconds() <= 0:
            msg = "duration must be positive"
            raise ValueError(msg)
        if peak is None:
            peak = self._default_peak(district, metric)
        drifting = metric in DRIFTING if spread is None else spread
        episode = Episode(
            district=district,
            metric=metric,
            start=(self.start if start is None else start).astimezone(UTC),
            duration=duration,
            peak=float(peak),
            spread=self._reach(district) if drifting and sensors is None else (),
            sensors=frozenset(sensors) if sensors is not None else None,
            hotspot=self._hotspot(district, metric, sensors),
            category=self._category(metric, category),
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

    def _reach(self, district: str) -> Reach:
        """The two nearest districts, reached after distance / drift speed, weaker."""
        return tuple(
            (code, timedelta(hours=km / self.drift_kmh), factor)
            for (code, km), factor in zip(self.neighbours(district), (0.7, 0.5), strict=False)
        )

    def _hotspot(
        self, district: str, metric: str, sensors: Sequence[str] | None
    ) -> tuple[float, float]:
        """Where reports gather: the first (listed or measuring) sensor, else the centroid."""
        if sensors is None:
            members = self.sensors_in(district, metric)
        else:
            members = [s for s in sensors if self.topology.sensor(s) is not None]
            if not members:
                msg = f"none of the sensors {list(sensors)} is registered"
                raise ValueError(msg)
        first = self.topology.sensor(members[0]) if members else None
        if first is not None:
            return first.lat, first.lon
        return self._world.centroid(district)

    def _category(self, metric: str, category: str | None) -> str | None:
        """The report category citizens file: the given one, else the metric's usual one."""
        if category is None:
            choices = PROBLEM_CATEGORIES.get(metric, ())
            return next((c for c, _ in choices if c in self._categories), None)
        if category not in self._categories:
            msg = f"report category {category!r} is not in topology {self.topology.id!r}"
            raise ValueError(msg)
        return category

    def _default_peak(self, district: str, metric: str) -> float:
        typical = self._world.typical_level(district, metric)
        if metric in _DROPPING:
            return -0.55 * typical
        return 3.0 * typical

    def _random_episode(self, at: datetime) -> None:
        """One random problem: pollution (drifts), a burst main, a noisy site or a jam."""
        rng = self._rng
        measured = self._world.district_series
        kinds = [(k, m) for k, m in _RANDOM_KINDS if any(key[1] == m for key in measured)]
        if not kinds:
            return
        kind, metric = rng.choice(kinds)
        district = rng.choice(sorted({d for d, m in measured if m == metric}))
        duration = timedelta(minutes=rng.uniform(15.0, 60.0))
        scale = rng.uniform(0.8, 1.3)
        if kind == "pressure":
            drop = -self._default_peak(district, metric) * scale
            self.pressure_drop(district=district, start=at, duration=duration, drop=drop)
            return
        if kind == "noise":
            site = rng.choice(self.sensors_in(district, metric))
            peak = rng.uniform(12.0, 22.0)
            sensors: list[str] | None = [site]
        else:
            peak = self._default_peak(district, metric) * scale
            sensors = None
        self.episode(
            district=district,
            metric=metric,
            start=at,
            duration=duration,
            peak=peak,
            sensors=sensors,
        )

    def _effects(
        self, at: datetime, zero: list[float]
    ) -> tuple[list[float], list[tuple[Episode, float]]]:
        """Per-series additions at ``at`` and the problems citizens can see (with strength).

        Returns ``zero`` itself (unchanged) when nothing is active, to spare a copy.
        """
        deltas = zero
        problems: list[tuple[Episode, float]] = []
        self._live = [ep for ep in self._live if ep.end > at]
        for ep in self._live:
            if at < ep.start:
                continue
            for district, lag, factor in ((ep.district, timedelta(0), 1.0), *ep.spread):
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
            return self._world.district_series.get((district, ep.metric), [])
        return self._world.series_of(ep.metric, ep.sensors)
