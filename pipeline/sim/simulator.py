"""A deterministic city simulator: raw sensor readings and citizen reports as Kafka payloads.

Why: the pipeline needs realistic traffic to be developed, demonstrated and benchmarked
without a city attached. Everything here is a pure function of the topology, the seed and
the options (one ``random.Random(seed)``, a simulated clock): the same seed gives the same
bytes, so a test can force a pollution episode and assert what the pipeline makes of it.

The stream, in simulated-time order:

- every sensor emits every metric of its registry entry once per *round* (``interval``),
  sensors spread evenly over the round so event time never goes backwards; values follow
  daily cycles in the topology's local time (:mod:`pipeline.sim.patterns`), per-sensor
  bias and autocorrelated noise, clamped to the metric's range (:mod:`pipeline.sim.world`);
- *episodes* add to a metric in one district for a while (:mod:`pipeline.sim.episodes`):
  pollution drifts to the nearest districts, water-pressure drops, local noise and
  traffic jams stay put. ``Simulator.episode`` forces one; random ones come at
  ``episodes_per_hour``;
- a ``fault_rate`` share of readings is nonsense (:mod:`pipeline.sim.faults`) so the
  dead-letter path has work;
- citizen reports arrive at ``reports_per_minute`` (simulated), mostly clustered around
  active problems, in Chinese, some urgent, some carrying a (fake) phone or checksummed
  ID number for the PII masking (:mod:`pipeline.sim.reports`).

Canonical JSON shapes (field order as produced)::

    reading: {"event_id", "sensor_id", "metric", "value", "unit", "observed_at"
              [, "lat", "lon"]}
    report:  {"report_id", "channel", "category", "description" [, "lat", "lon"], "area",
              "reported_at", "urgent"}

Event ids are ``<run token>-<sequence>`` (token = hash of seed and start), report ids
``rpt-<run token>-<number>``; keys are the sensor id / report id. Times are ISO 8601 UTC
with microseconds and a ``Z`` (``2026-11-25T08:00:00.000000Z``, :mod:`pipeline.sim.events`).

The random stream is shared by every part, so the order of draws is part of the output:
a change that draws one number more, or earlier, changes every byte after it.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from pipeline.sim.episodes import Episode, Scenario
from pipeline.sim.events import US, SimEvent, from_us, second_stamp, to_us
from pipeline.sim.faults import FAULT_KINDS, inject_fault
from pipeline.sim.patterns import hour_of_day, utc_offset_s
from pipeline.sim.reports import ReportWriter, resident_id_check
from pipeline.sim.world import SensorWorld
from pipeline.topology import Topology

# FAULT_KINDS, Episode, SimEvent and resident_id_check live in their own modules; they are
# named here too because code imports them from this one.
__all__ = [
    "FAULT_KINDS",
    "Episode",
    "SimEvent",
    "Simulator",
    "resident_id_check",
]


@dataclass(frozen=True, slots=True)
class _Pass:
    """The fixed times and rates of one pass over the stream (µs, events per second)."""

    start_us: int
    until_us: int | None
    interval_us: int
    report_rate: float
    episode_rate: float


class Simulator(Scenario):
    """The simulated city; iterate :meth:`events` once for the stream.

    The scenario API (districts, sensors, forced episodes) comes from
    :class:`~pipeline.sim.episodes.Scenario`.
    """

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
        _require(
            (interval.total_seconds() > 0, "interval must be positive"),
            (0.0 <= fault_rate <= 1.0, "fault_rate must be between 0 and 1"),
            (reports_per_minute >= 0, "reports_per_minute must not be negative"),
            (episodes_per_hour >= 0, "episodes_per_hour must not be negative"),
            (0.0 <= problem_share <= 1.0, "problem_share must be between 0 and 1"),
            (drift_kmh > 0, "drift_kmh must be positive"),
        )
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None:
            msg = "start must be timezone-aware"
            raise ValueError(msg)
        rng = random.Random(seed)  # noqa: S311  # a simulation, not cryptography
        world = SensorWorld(topology, rng)
        categories = {c.id for c in topology.report_categories}
        super().__init__(
            world, rng, start=start.astimezone(UTC), drift_kmh=drift_kmh, categories=categories
        )
        self.seed = seed
        self.interval = interval
        self.fault_rate = fault_rate
        self.reports_per_minute = reports_per_minute
        self.episodes_per_hour = episodes_per_hour
        self.problem_share = problem_share
        self.include_location = include_location
        self.sensor_topic = topology.topics.name("raw_sensors")
        self.report_topic = topology.topics.name("raw_reports")
        self.readings_per_round = len(world.series)
        self._zero = [0.0] * len(world.series)  # no episode active: nothing added
        self._tz = ZoneInfo(topology.timezone)
        self._token = hashlib.blake2b(
            f"{seed}|{self.start.isoformat()}".encode(), digest_size=4
        ).hexdigest()
        self._reports = ReportWriter(
            world, rng, topic=self.report_topic, token=self._token, problem_share=problem_share
        )
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

    def events(self, until: datetime | None = None) -> Iterator[SimEvent]:
        """The stream in simulated-time order, up to (not including) ``until``."""
        start_us = to_us(self.start)
        run = _Pass(
            start_us=start_us,
            until_us=None if until is None else to_us(until),
            interval_us=max(1, round(self.interval.total_seconds() * US)),
            report_rate=self.reports_per_minute / 60.0 if self._categories else 0.0,
            episode_rate=self.episodes_per_hour / 3600.0,
        )
        next_report = self._next_gap(start_us, run.report_rate)
        next_episode = self._next_gap(start_us, run.episode_rate)
        for round_no in itertools.count():
            round_us = start_us + round_no * run.interval_us
            if run.until_us is not None and round_us >= run.until_us:
                return
            while next_episode is not None and next_episode <= round_us:
                self._random_episode(from_us(next_episode))
                next_episode = self._next_gap(next_episode, run.episode_rate)
            next_report = yield from self._round(run, round_no, next_report)

    def _round(
        self, run: _Pass, round_no: int, next_report: int | None
    ) -> Generator[SimEvent, None, int | None]:
        """One round: every series of every sensor once, spread evenly over the interval,
        and the reports due in between; returns when the next report is due."""
        gauss, rand, dumps = self._rng.gauss, self._rng.random, orjson.dumps
        series, places, token = self._world.series, self._world.places, self._token
        topic, fault_rate, with_location = self.sensor_topic, self.fault_rate, self.include_location
        round_us = run.start_us + round_no * run.interval_us
        middle = from_us(round_us + run.interval_us // 2)
        deltas, problems = self._effects(middle, self._zero)
        offset_s = utc_offset_s(middle, self._tz)
        seq = round_no * self.readings_per_round  # every round before this one was whole
        stamps = _Stamps()
        for k, place in enumerate(places):
            t = round_us + (k * run.interval_us) // len(places)
            if run.until_us is not None and t >= run.until_us:
                return next_report
            while next_report is not None and next_report <= t:
                self.reports += 1
                yield self._reports.report(next_report, self.reports, problems)
                next_report = self._next_gap(next_report, run.report_rate)
            stamp = stamps.iso(t)
            h, h2, frac = hour_of_day(t, offset_s)
            for i in place.series:
                s = series[i]
                seq += 1
                doc: dict[str, object] = {
                    "event_id": f"{token}-{seq}",
                    "sensor_id": place.sensor_id,
                    "metric": s.metric,
                    "value": s.sample(h, h2, frac, deltas[i], gauss),
                    "unit": s.unit,
                    "observed_at": stamp,
                }
                if with_location:
                    doc["lat"] = place.lat
                    doc["lon"] = place.lon
                if fault_rate and rand() < fault_rate:
                    kind, key, payload = inject_fault(self._rng, doc, place.key, lo=s.lo, hi=s.hi)
                    self.faults[kind] += 1
                    yield SimEvent(topic, key, payload, t, kind)
                else:
                    yield SimEvent(topic, place.key, dumps(doc), t)
        return next_report

    def _next_gap(self, after_us: int, per_second: float) -> int | None:
        """When the next Poisson arrival at ``per_second`` comes (None: never)."""
        if per_second <= 0:
            return None
        return after_us + max(1, round(self._rng.expovariate(per_second) * US))


class _Stamps:
    """ISO stamps of event times, formatting each whole second once (the hot path)."""

    __slots__ = ("_prefix", "_sec")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def iso(self, at_us: int) -> str:
        sec = at_us // US
        if sec != self._sec:
            self._sec = sec
            self._prefix = second_stamp(sec)
        return f"{self._prefix}.{at_us % US:06d}Z"


def _require(*checks: tuple[bool, str]) -> None:
    """Raise ValueError with the message of the first check that fails."""
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
