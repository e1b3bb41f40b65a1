"""Threshold rules over normalized readings: a pure ``step(state, reading, rule, topology)``.

Why a pure step over plain state (shared/notes/style.md item 3): the worker only loads the
:class:`DetectorState` of one (rule, subject) from its table, calls :func:`step`, stores the
state back and produces the returned events; the same code runs in ``cityops dry-run`` and
in the tests, and two workers that split the subjects between them emit exactly what one
worker would (each subject's state only ever sees that subject's readings).

Semantics (what a user of the topology may rely on):

- **Subject.** ``scope: sensor`` -> the reading's sensor id; ``scope: {area: <level>}`` ->
  the reading's area code at that level (the city's code for ``city``); a reading without
  an area at that level is not evaluated by that rule. Readings of an area rule must be
  partitioned by that area (the worker re-keys them), not by sensor.
- **Event time and lateness.** Each state keeps a watermark = (latest ``observed_at`` seen
  for this subject) - ``topology.detection_lateness``. Sensor readings wait in a
  small buffer ordered by ``(observed_at, event_id)`` and are evaluated once the watermark
  reaches them, so readings that arrive out of order within the allowed lateness are
  evaluated in event-time order. A reading older than the watermark (more than the
  allowed lateness behind the newest reading of its subject), or not after the last
  evaluated one (a replayed duplicate), is dropped and counted in ``state.late``; for area
  rules, a reading is late when its window has already closed. Lateness is decided from
  the subject's readings alone, so the output does not depend on how the caller batches;
  :func:`advance` lets the worker push the watermark forward (e.g. at end of input, or
  from a partition-wide clock so quiet areas' windows close) with the promise that
  nothing older will be accepted afterwards.
- **Area windows.** Tumbling windows of ``scope.window`` aligned to the Unix epoch; the
  window's ``statistic`` (mean, min, max, sum or count) over every reading in it becomes
  one sample at the window's end, evaluated when the watermark reaches the window's end.
  Empty windows yield no sample (a gap neither breaks nor extends a streak). A window
  keeps its smallest :data:`MAX_EVENT_IDS` event ids, so its evidence does not depend on
  arrival order. A duplicate delivered into a still-open window counts twice (normalize
  drops duplicates upstream; remembering every id of a district's window would bloat the
  state).
- **Condition.** above: ``value > threshold``; below: ``value < threshold``; outside:
  ``value < low or value > high``. The severity of a sample is the highest level it meets.
- **Opening.** The condition must hold for ``for.count`` consecutive samples, or for
  ``for.duration`` of event time (from the first breaching sample of the streak to the
  current one); a non-breaching sample resets the streak. The incident opens at the
  severity of the sample that completes the condition, with the streak as evidence.
- **While open.** One open incident per (rule, subject). Each breaching sample updates the
  evidence (count, peak, last_at, event ids: the first :data:`MAX_EVENT_IDS` kept) and
  emits an ``evidence`` event, or an ``upgrade`` event when its severity is higher than
  the incident's; severities never go down while open. A sample that no longer breaches
  but has not crossed the clear value (the hysteresis band) changes nothing.
- **Clearing.** Only a sample that crosses the clear value (above: ``<= clear``; below:
  ``>= clear``; outside: back inside ``[clear_low, clear_high]``; with no clear value:
  the first non-breaching sample) emits ``auto_resolve`` and forgets the incident; the next
  breach starts a new streak and, when it completes, a NEW incident.
- **Ids.** ``incident_id = "inc-" + blake2b(rule id, subject, observed_at of the streak's
  first breaching sample)[:16 hex]``: a replay of the same readings gives the same ids.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.aggregates.codec import add_exact as _add_exact
from pipeline.aggregates.codec import from_micros as _from_micros
from pipeline.aggregates.codec import iso as _iso
from pipeline.aggregates.codec import parse_iso as _parse
from pipeline.aggregates.codec import to_micros as _micros
from pipeline.models import (
    AdminCodes,
    AreaLevel,
    Evidence,
    Incident,
    IncidentAction,
    IncidentKind,
    Reading,
    Severity,
)
from pipeline.rules.incidents import IncidentEvent, new_incident
from pipeline.topology import AreaScope, Band, Rule, Topology

#: Evidence keeps the first this many event ids (the ones that opened the incident and the
#: earliest after); ``evidence.count`` still counts every breaching sample.
MAX_EVENT_IDS = 32


def incident_id(*parts: str) -> str:
    """A deterministic incident id: ``inc-`` + 16 hex digits of blake2b over the parts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8)
    return "inc-" + digest.hexdigest()


def state_key(rule_id: str, subject: str) -> str:
    """The table key under which the worker persists one :class:`DetectorState`."""
    return f"{rule_id}|{subject}"


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class Sample:
    """One value to evaluate: a sensor reading, or a closed area window's statistic."""

    at: datetime
    event_id: str
    value: float
    areas: dict[str, str]
    event_ids: list[str]

    def key(self) -> tuple[datetime, str]:
        """Event-time order, ties broken by event id so every replay sorts the same."""
        return (self.at, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "at": _iso(self.at),
            "event_id": self.event_id,
            "value": self.value,
            "areas": dict(self.areas),
            "event_ids": list(self.event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        """Inverse of :meth:`to_dict`."""
        return cls(
            at=_parse(data["at"]),
            event_id=str(data["event_id"]),
            value=float(data["value"]),
            areas={str(k): str(v) for k, v in data["areas"].items()},
            event_ids=[str(e) for e in data["event_ids"]],
        )


@dataclass(slots=True)
class Window:
    """A running area-window accumulator: count, exact sum (Shewchuk partials), min, max."""

    count: int = 0
    partials: list[float] = field(default_factory=list)
    min: float = math.inf
    max: float = -math.inf
    event_ids: list[str] = field(default_factory=list)
    first_event_id: str = ""

    def add(self, value: float, event_id: str) -> None:
        """Fold one reading in; the sum stays exact whatever the order."""
        self.count += 1
        _add_exact(self.partials, value)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        # The smallest ids, sorted: the same whatever order the readings arrived in.
        if len(self.event_ids) < MAX_EVENT_IDS or event_id < self.event_ids[-1]:
            bisect.insort(self.event_ids, event_id)
            del self.event_ids[MAX_EVENT_IDS:]
        if not self.first_event_id or event_id < self.first_event_id:
            self.first_event_id = event_id

    def statistic(self, name: str) -> float:
        """The window's value for the rule's statistic (mean, min, max, sum, count)."""
        if name == "max":
            return self.max
        if name == "min":
            return self.min
        if name == "count":
            return float(self.count)
        total = math.fsum(self.partials)
        return total if name == "sum" else total / self.count

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "count": self.count,
            "partials": list(self.partials),
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "event_ids": list(self.event_ids),
            "first_event_id": self.first_event_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        """Inverse of :meth:`to_dict`."""
        raw_min = data.get("min")
        raw_max = data.get("max")
        return cls(
            min=math.inf if raw_min is None else float(raw_min),
            count=int(data["count"]),
            partials=[float(p) for p in data["partials"]],
            max=-math.inf if raw_max is None else float(raw_max),
            event_ids=[str(e) for e in data["event_ids"]],
            first_event_id=str(data.get("first_event_id", "")),
        )


@dataclass(slots=True)
class Streak:
    """Consecutive breaching samples before an incident opens."""

    first_at: datetime
    count: int
    peak: float
    event_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "first_at": _iso(self.first_at),
            "count": self.count,
            "peak": self.peak,
            "event_ids": list(self.event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Streak:
        """Inverse of :meth:`to_dict`."""
        return cls(
            first_at=_parse(data["first_at"]),
            count=int(data["count"]),
            peak=float(data["peak"]),
            event_ids=[str(e) for e in data["event_ids"]],
        )


@dataclass(slots=True)
class DetectorState:
    """Everything one (rule, subject) remembers; persisted by the worker under
    :func:`state_key` as ``to_dict()`` (plain JSON types only)."""

    rule_id: str
    subject: str
    max_seen: datetime | None = None
    watermark: datetime | None = None
    last_at: datetime | None = None
    last_event_id: str = ""
    buffer: list[Sample] = field(default_factory=list)
    windows: dict[int, Window] = field(default_factory=dict)
    streak: Streak | None = None
    incident: Incident | None = None
    late: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot."""
        return {
            "rule_id": self.rule_id,
            "subject": self.subject,
            "max_seen": None if self.max_seen is None else _iso(self.max_seen),
            "watermark": None if self.watermark is None else _iso(self.watermark),
            "last_at": None if self.last_at is None else _iso(self.last_at),
            "last_event_id": self.last_event_id,
            "buffer": [s.to_dict() for s in self.buffer],
            "windows": {str(k): w.to_dict() for k, w in sorted(self.windows.items())},
            "streak": None if self.streak is None else self.streak.to_dict(),
            "incident": None if self.incident is None else self.incident.model_dump(mode="json"),
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rule_id=str(data["rule_id"]),
            subject=str(data["subject"]),
            max_seen=None if data.get("max_seen") is None else _parse(data["max_seen"]),
            watermark=None if data.get("watermark") is None else _parse(data["watermark"]),
            last_at=None if data.get("last_at") is None else _parse(data["last_at"]),
            last_event_id=str(data.get("last_event_id", "")),
            buffer=[Sample.from_dict(s) for s in data.get("buffer", [])],
            windows={int(k): Window.from_dict(w) for k, w in data.get("windows", {}).items()},
            streak=None if data.get("streak") is None else Streak.from_dict(data["streak"]),
            incident=(
                None if data.get("incident") is None else Incident.model_validate(data["incident"])
            ),
            late=int(data.get("late", 0)),
        )


# --------------------------------------------------------------------------- rule view


@dataclass(frozen=True, slots=True)
class Level:
    """One graded level: the band is ``(low, high)``; above uses only ``low`` (the
    threshold), below only ``high``; outside both."""

    severity: Severity
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Spec:
    """The parts of a topology rule that evaluation needs, in one normalized shape.

    Why: the evaluation below reads only this, so the topology's YAML shape is interpreted
    in exactly one function (:func:`spec_of`).
    """

    rule_id: str
    metric: str
    condition: str  # above | below | outside
    levels: tuple[Level, ...]  # ascending severity
    count: int | None
    duration: timedelta | None
    clear_low: float | None
    clear_high: float | None
    area_level: str | None  # None: sensor scope
    window: timedelta | None
    statistic: str


def _breach(spec: Spec, value: float) -> tuple[Severity, float] | None:
    """The highest level ``value`` meets and that level's (violated) threshold, if any."""
    met: tuple[Severity, float] | None = None
    for level in spec.levels:
        if spec.condition == "above" and level.low is not None and value > level.low:
            met = (level.severity, level.low)
        elif spec.condition == "below" and level.high is not None and value < level.high:
            met = (level.severity, level.high)
        elif spec.condition == "outside" and level.low is not None and level.high is not None:
            if value < level.low:
                met = (level.severity, level.low)
            elif value > level.high:
                met = (level.severity, level.high)
    return met


def _cleared(spec: Spec, value: float) -> bool:
    """Whether ``value`` crosses the clear value (hysteresis) of an open incident."""
    low, high = spec.clear_low, spec.clear_high
    if spec.condition == "above" and low is not None:
        return value <= low
    if spec.condition == "below" and high is not None:
        return value >= high
    if spec.condition == "outside" and low is not None and high is not None:
        return low <= value <= high
    return _breach(spec, value) is None


def _extremity(spec: Spec, value: float) -> float:
    """How far into breach a value is, for choosing the evidence peak."""
    if spec.condition == "above":
        return value
    if spec.condition == "below":
        return -value
    first = spec.levels[0]
    low = first.low if first.low is not None else -math.inf
    high = first.high if first.high is not None else math.inf
    return max(value - high, low - value)


def _peak(spec: Spec, current: float, value: float) -> float:
    return value if _extremity(spec, value) > _extremity(spec, current) else current


# --------------------------------------------------------------------------- step


def _lateness(topology: Topology) -> timedelta:
    return topology.detection_lateness


def subject_for(reading: Reading, rule: Rule, topology: Topology) -> str | None:
    """The subject a rule evaluates ``reading`` under (None: the rule does not apply)."""
    spec = spec_of(rule)
    if reading.metric != spec.metric:
        return None
    if spec.area_level is None:
        return reading.sensor_id
    return _area_code(reading.areas, spec.area_level, topology)


def _area_code(areas: AdminCodes, level: str, topology: Topology) -> str | None:
    if level == AreaLevel.city:
        return topology.city.code
    code = getattr(areas, level, None)
    return code if isinstance(code, str) and code else None


def new_state(rule: Rule, subject: str) -> DetectorState:
    """The empty state of one (rule, subject)."""
    return DetectorState(rule_id=str(rule.id), subject=subject)


def step(
    state: DetectorState, reading: Reading, rule: Rule, topology: Topology
) -> tuple[DetectorState, list[IncidentEvent]]:
    """Feed one reading of this state's subject; return the state and the incident events.

    The state is updated in place and returned (the worker stores what it gets back).
    Readings of another metric or another subject are ignored (returned state unchanged).
    """
    spec = spec_of(rule)
    if subject_for(reading, rule, topology) != state.subject:
        return state, []
    at = reading.observed_at.astimezone(UTC)
    if spec.area_level is None:
        if _is_late(state, at, reading.event_id) or any(
            s.event_id == reading.event_id for s in state.buffer
        ):
            state.late += 1
            return state, []
        areas = reading.areas.model_dump(exclude_none=True, exclude={"schema_version"})
        sample = Sample(at, reading.event_id, reading.value, areas, [reading.event_id])
        state.buffer.append(sample)
        state.buffer.sort(key=Sample.key)
    else:
        if state.last_at is not None and at < state.last_at:
            state.late += 1
            return state, []
        assert spec.window is not None  # noqa: S101  # spec_of guarantees it for area scope
        width = _micros(_from_micros(0) + spec.window)
        start = _micros(at) // width * width
        state.windows.setdefault(start, Window()).add(reading.value, reading.event_id)
    state.max_seen = at if state.max_seen is None else max(state.max_seen, at)
    return _drain(state, spec, state.max_seen - _lateness(topology), topology)


def advance(
    state: DetectorState, watermark: datetime, rule: Rule, topology: Topology
) -> tuple[DetectorState, list[IncidentEvent]]:
    """Evaluate everything at or before ``watermark`` (buffered readings, closed windows).

    The caller promises that no reading older than ``watermark`` will be fed afterwards;
    one that is, is dropped as late (for area rules: one whose window has closed). Call it
    at end of input, or with a partition-wide event-time clock so that quiet subjects'
    windows still close.
    """
    return _drain(state, spec_of(rule), watermark.astimezone(UTC), topology)


def _is_late(state: DetectorState, at: datetime, event_id: str) -> bool:
    """Older than the watermark, or not after the last evaluated reading (a replay)."""
    if state.watermark is not None and at < state.watermark:
        return True
    if state.last_at is None:
        return False
    return (at, event_id) <= (state.last_at, state.last_event_id)


def _drain(
    state: DetectorState, spec: Spec, watermark: datetime, topology: Topology
) -> tuple[DetectorState, list[IncidentEvent]]:
    events: list[IncidentEvent] = []
    if state.watermark is None or watermark > state.watermark:
        state.watermark = watermark
    if spec.area_level is None:
        while state.buffer and state.buffer[0].at <= watermark:
            sample = state.buffer.pop(0)
            state.last_at, state.last_event_id = sample.at, sample.event_id
            events.extend(_evaluate(state, spec, sample, topology))
        return state, events
    assert spec.window is not None  # noqa: S101  # spec_of guarantees it for area scope
    width = _micros(_from_micros(0) + spec.window)
    for start in sorted(state.windows):
        end = _from_micros(start + width)
        if end > watermark:
            break
        window = state.windows.pop(start)
        state.last_at, state.last_event_id = end, ""
        codes = topology.admin_codes(state.subject)
        areas = {str(lvl): str(code) for lvl, code in codes.items() if str(lvl) != "city"}
        sample = Sample(
            at=end,
            event_id=window.first_event_id,
            value=window.statistic(spec.statistic),
            areas=areas,
            event_ids=list(window.event_ids),
        )
        events.extend(_evaluate(state, spec, sample, topology))
    return state, events


def _evaluate(
    state: DetectorState, spec: Spec, sample: Sample, topology: Topology
) -> list[IncidentEvent]:
    """Apply one sample, in event-time order, to the streak / open incident."""
    breach = _breach(spec, sample.value)
    incident = state.incident
    if incident is not None:
        if breach is None:
            if not _cleared(spec, sample.value):
                return []  # inside the hysteresis band: stays open, no new evidence
            state.incident = None
            state.streak = None
            resolved = incident.model_copy(
                update={"updated_at": sample.at, "last_action": IncidentAction.auto_resolve}
            )
            return [IncidentEvent(action=IncidentAction.auto_resolve, incident=resolved)]
        severity, threshold = breach
        ev = incident.evidence
        ids = list(ev.event_ids)
        for event_id in sample.event_ids:
            if len(ids) >= MAX_EVENT_IDS:
                break
            if event_id not in ids:
                ids.append(event_id)
        upgrade = severity.rank > incident.severity.rank
        evidence = ev.model_copy(
            update={
                "event_ids": tuple(ids),
                "peak_value": sample.value
                if ev.peak_value is None
                else _peak(spec, ev.peak_value, sample.value),
                "threshold": threshold if upgrade else ev.threshold,
                "last_at": sample.at,
                "count": ev.count + 1,
            }
        )
        action = IncidentAction.upgrade if upgrade else IncidentAction.evidence
        update: dict[str, Any] = {
            "evidence": evidence,
            "updated_at": sample.at,
            "last_action": action,
        }
        if upgrade:
            update["severity"] = severity
        state.incident = incident.model_copy(update=update)
        return [IncidentEvent(action=action, incident=state.incident)]

    if breach is None:
        state.streak = None
        return []
    severity, threshold = breach
    streak = state.streak
    if streak is None:
        streak = Streak(sample.at, 0, sample.value, [])
    streak.count += 1
    streak.peak = _peak(spec, streak.peak, sample.value)
    for event_id in sample.event_ids:
        if len(streak.event_ids) < MAX_EVENT_IDS and event_id not in streak.event_ids:
            streak.event_ids.append(event_id)
    state.streak = streak
    held = (spec.count is not None and streak.count >= spec.count) or (
        spec.duration is not None and sample.at - streak.first_at >= spec.duration
    )
    if not held:
        return []
    state.streak = None
    state.incident = new_incident(
        incident_id=incident_id(spec.rule_id, state.subject, _iso(streak.first_at)),
        rule_id=spec.rule_id,
        kind=IncidentKind.threshold_breach,
        severity=severity,
        subject=state.subject,
        subject_kind="sensor" if spec.area_level is None else "area",
        metric=spec.metric,
        category=None,
        evidence=Evidence(
            event_ids=tuple(streak.event_ids),
            peak_value=streak.peak,
            threshold=threshold,
            first_at=streak.first_at,
            last_at=sample.at,
            count=streak.count,
        ),
        areas=AdminCodes(**sample.areas),
        opened_at=sample.at,
        topology=topology,
    )
    return [IncidentEvent(action=IncidentAction.open, incident=state.incident)]


# --------------------------------------------------------------------------- many keys


@dataclass(slots=True)
class Detector:
    """All (rule, subject) states of one worker, for dry runs and tests.

    The worker does the same with a table keyed by :func:`state_key`: look up the rules of
    the reading's metric, derive each subject, load, :func:`step`, store.
    """

    topology: Topology
    states: dict[str, DetectorState] = field(default_factory=dict)

    def process(self, reading: Reading) -> list[IncidentEvent]:
        """Feed one reading to every rule of its metric."""
        events: list[IncidentEvent] = []
        for rule in self.topology.rules:
            subject = subject_for(reading, rule, self.topology)
            if subject is None:
                continue
            key = state_key(str(rule.id), subject)
            state = self.states.get(key) or new_state(rule, subject)
            self.states[key], emitted = step(state, reading, rule, self.topology)
            events.extend(emitted)
        return events

    def advance(self, watermark: datetime) -> list[IncidentEvent]:
        """Push every state's watermark (e.g. end of input); states in key order."""
        rules = {str(rule.id): rule for rule in self.topology.rules}
        events: list[IncidentEvent] = []
        for key in sorted(self.states):
            state = self.states[key]
            self.states[key], emitted = advance(
                state, watermark, rules[state.rule_id], self.topology
            )
            events.extend(emitted)
        return events

    def run(self, readings: Iterable[Reading]) -> list[IncidentEvent]:
        """Process readings in order; return every event."""
        events: list[IncidentEvent] = []
        for reading in readings:
            events.extend(self.process(reading))
        return events


_SPECS: dict[int, tuple[Rule, Spec]] = {}


def spec_of(rule: Rule) -> Spec:
    """Read a topology rule into a :class:`Spec` (the one place that knows its shape).

    Cached per rule object (rules are frozen; the worker evaluates one per reading). The
    cache holds the rule itself, so its id cannot be reused by another object.
    """
    cached = _SPECS.get(id(rule))
    if cached is not None and cached[0] is rule:
        return cached[1]
    spec = _spec_of(rule)
    _SPECS[id(rule)] = (rule, spec)
    return spec


def _spec_of(rule: Rule) -> Spec:
    scope = rule.scope
    area_level: str | None = None
    window: timedelta | None = None
    statistic = "mean"
    if isinstance(scope, AreaScope):
        area_level = str(scope.area)
        window = scope.window
        statistic = str(scope.statistic)
    condition = str(rule.condition)
    levels: list[Level] = []
    for level in rule.levels:
        if condition == "outside":
            levels.append(Level(Severity(level.severity), level.low, level.high))
        elif condition == "above":
            levels.append(Level(Severity(level.severity), level.threshold, None))
        else:
            levels.append(Level(Severity(level.severity), None, level.threshold))
    clear = rule.clear
    clear_low: float | None = None
    clear_high: float | None = None
    if isinstance(clear, Band):
        clear_low, clear_high = clear.low, clear.high
    elif clear is not None:
        clear_low = clear_high = float(clear)
    hold = rule.for_
    return Spec(
        rule_id=str(rule.id),
        metric=str(rule.metric),
        condition=condition,
        levels=tuple(levels),
        count=hold.count,
        duration=hold.duration,
        clear_low=clear_low,
        clear_high=clear_high,
        area_level=area_level,
        window=window,
        statistic=statistic,
    )


class BreachCheck:
    """Does one reading's value breach any rule of its metric? (for aggregate `breaches`).

    Built once per topology: rule specs are grouped by metric, so the hot path is one dict
    lookup and a few comparisons. Area rules count too: their threshold applies to the
    reading's value as much as to the window statistic.
    """

    def __init__(self, topology: Topology) -> None:
        self._by_metric: dict[str, list[Spec]] = {}
        for rule in topology.rules:
            spec = spec_of(rule)
            self._by_metric.setdefault(spec.metric, []).append(spec)

    def __call__(self, reading: Reading) -> bool:
        specs = self._by_metric.get(reading.metric)
        return bool(specs) and any(_breach(spec, reading.value) for spec in specs or ())
