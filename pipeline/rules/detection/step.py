"""The pure step of a threshold rule: readings in, incident events out, per (rule, subject).

Why a pure step over plain state (shared/notes/style.md item 3): the worker loads the
:class:`~.state.DetectorState` of one (rule, subject), calls :func:`step_row`, stores the
state back and produces the returned events; the same code runs in ``cityops dry-run`` and
in the tests. The semantics are documented on :mod:`pipeline.rules.detection`.

The hot path works on :class:`~pipeline.models.ReadingRow` and integer microseconds; a
datetime or a pydantic model is made only when an incident event is.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pipeline.aggregates.accumulator import Accumulator
from pipeline.aggregates.codec import MICROSECOND, iso, to_micros
from pipeline.aggregates.watermark import SourceClock
from pipeline.models import (
    AdminCodes,
    AreaCodes,
    AreaLevel,
    Evidence,
    Incident,
    IncidentAction,
    IncidentKind,
    Reading,
    ReadingRow,
    Severity,
)
from pipeline.rules.detection.spec import Spec, breach, cleared, peak, spec_of
from pipeline.rules.detection.state import DetectorState, Sample, Streak
from pipeline.rules.lifecycle import MAX_EVENT_IDS, IncidentEvent, incident_id, new_incident
from pipeline.topology import Rule, Topology

Events = tuple[DetectorState, list[IncidentEvent]]
_NO_PROGRESS: Mapping[str, int] = {}


def subject_for(reading: Reading | ReadingRow, rule: Rule, topology: Topology) -> str | None:
    """The subject a rule evaluates ``reading`` under (None: the rule does not apply)."""
    spec = spec_of(rule)
    if reading.metric != spec.metric:
        return None
    if spec.area_level is None:
        return reading.sensor_id
    row = reading if isinstance(reading, ReadingRow) else ReadingRow.of(reading)
    return area_subject(row, spec.area_level, topology)


def area_subject(row: ReadingRow, level: str, topology: Topology) -> str | None:
    """The reading's area code at `level` (the city's code for the city level)."""
    if level == AreaLevel.city:
        return topology.city.code
    code = getattr(row, level, None)
    return code if isinstance(code, str) and code else None


def new_state(rule: Rule, subject: str) -> DetectorState:
    """The empty state of one (rule, subject)."""
    return DetectorState(rule_id=str(rule.id), subject=subject)


def lateness_us(topology: Topology) -> int:
    """The lateness rule evaluation allows, in microseconds."""
    return topology.detection_lateness // MICROSECOND


def step(state: DetectorState, reading: Reading, rule: Rule, topology: Topology) -> Events:
    """Feed one reading model (see :func:`step_row`; the models' convenience form)."""
    return step_row(state, ReadingRow.of(reading), rule, topology)


def step_row(
    state: DetectorState,
    row: ReadingRow,
    rule: Rule,
    topology: Topology,
    *,
    lateness: int | None = None,
    expected: Sequence[str] = (),
    partition: str | None = None,
    progress: Mapping[str, int] = _NO_PROGRESS,
) -> Events:
    """Feed one reading of this state's subject; return the state and the incident events.

    The state is updated in place and returned (the worker stores what it gets back).
    Readings of another metric or another subject are ignored (returned state unchanged).
    `lateness` (µs) saves the caller's lookup; `expected` are the sensors registered in an
    area rule's area, which its windows wait for from the first reading on; `partition`
    (the reading's raw partition) and `progress` (its key's, see
    :class:`~pipeline.aggregates.watermark.SourceClock`) tell an area rule which of its
    sensors are idle.
    """
    spec = spec_of(rule)
    if lateness is None:
        lateness = lateness_us(topology)
    if spec.area_level is None:
        if row.metric != spec.metric or row.sensor_id != state.subject:
            return state, []
        return _sensor_step(state, spec, row, lateness, topology)
    if row.metric != spec.metric or area_subject(row, spec.area_level, topology) != state.subject:
        return state, []
    return _area_step(state, spec, row, lateness, expected, partition, progress, topology)


def _sensor_step(
    state: DetectorState, spec: Spec, row: ReadingRow, lateness: int, topology: Topology
) -> Events:
    at = row.observed_at_us
    buffer = state.buffer
    if _is_late(state, at, row.event_id) or (
        buffer and any(s.event_id == row.event_id for s in buffer)
    ):
        state.late += 1
        return state, []
    areas: AreaCodes = (row.district, row.street, row.grid, row.community)
    sample = Sample(at, row.event_id, row.value, areas, (row.event_id,))
    if not buffer:
        state.buffer = [sample]
    elif buffer[-1].key() <= sample.key():
        buffer.append(sample)
    else:
        bisect.insort(buffer, sample, key=Sample.key)
    if state.max_seen_us is None or at > state.max_seen_us:
        state.max_seen_us = at
    return drain(state, spec, state.max_seen_us - lateness, topology)


def _area_step(
    state: DetectorState,
    spec: Spec,
    row: ReadingRow,
    lateness: int,
    expected: Sequence[str],
    partition: str | None,
    progress: Mapping[str, int],
    topology: Topology,
) -> Events:
    at = row.observed_at_us
    clock = state.clock
    if clock is None:
        idle = topology.event_time.idle(timedelta(microseconds=spec.window_us))
        clock = state.clock = SourceClock(lateness, idle // MICROSECOND)
        clock.expect(expected, at, row.arrived_us)
    width = spec.window_us
    start = at - at % width
    closed = clock.watermark(progress)
    last = state.last_at_us
    if (last is not None and start + width <= last) or (
        closed is not None and start + width <= closed
    ):
        state.late += 1
        return state, []
    windows = state.windows
    if windows is None:
        windows = state.windows = {}
    window = windows.get(start)
    if window is None:
        window = windows[start] = Accumulator()
    window.add_event(row.value, row.event_id, MAX_EVENT_IDS)
    clock.observe(row.sensor_id, at, row.arrived_us, partition, progress)
    mark = clock.watermark(progress)
    if mark is None:
        return state, []
    return drain(state, spec, mark, topology)


def advance(state: DetectorState, watermark: datetime, rule: Rule, topology: Topology) -> Events:
    """Evaluate everything at or before ``watermark`` (buffered readings, closed windows).

    The caller promises that no reading older than ``watermark`` will be fed afterwards;
    one that is, is dropped as late (for area rules: one whose window has closed). Call it
    at end of input so that every window is evaluated.
    """
    micros = to_micros(watermark)
    if state.clock is not None:
        state.clock.push(micros)
    return drain(state, spec_of(rule), micros, topology)


def _is_late(state: DetectorState, at: int, event_id: str) -> bool:
    """Older than the watermark, or not after the last evaluated reading (a replay)."""
    if state.watermark_us is not None and at < state.watermark_us:
        return True
    if state.last_at_us is None:
        return False
    return (at, event_id) <= (state.last_at_us, state.last_event_id)


def drain(state: DetectorState, spec: Spec, watermark: int, topology: Topology) -> Events:
    """Raise the state's watermark and evaluate every sample it has reached, in order."""
    if state.watermark_us is None or watermark > state.watermark_us:
        state.watermark_us = watermark
    events: list[IncidentEvent] = []
    for sample in _due_samples(state, spec, watermark, topology):
        # A window's sample stands for many readings: only its end orders what follows.
        state.last_at_us = sample.at_us
        state.last_event_id = sample.event_id if spec.area_level is None else ""
        events.extend(evaluate(state, spec, sample, topology))
    return state, events


def _due_samples(
    state: DetectorState, spec: Spec, watermark: int, topology: Topology
) -> list[Sample]:
    """Buffered readings at or before ``watermark``, or the area windows it closed."""
    if spec.area_level is None:
        buffer = state.buffer
        if not buffer:
            return []
        count = 0
        while count < len(buffer) and buffer[count].at_us <= watermark:
            count += 1
        if count == len(buffer):
            state.buffer = None
            return buffer
        due = buffer[:count]
        del buffer[:count]
        return due
    width = spec.window_us
    closed: list[Sample] = []
    windows = state.windows
    if not windows:
        return closed
    for start in sorted(windows):
        if start + width > watermark:
            break
        window = windows.pop(start)
        closed.append(
            Sample(
                at_us=start + width,
                event_id=window.first_event_id,
                value=window.statistic(spec.statistic),
                areas=_areas_of(state.subject, topology),
                event_ids=tuple(window.event_ids),
            )
        )
    if not windows:
        state.windows = None
    return closed


def _areas_of(code: str, topology: Topology) -> AreaCodes:
    codes = {str(level): str(area) for level, area in topology.admin_codes(code).items()}
    return (codes.get("district"), codes.get("street"), codes.get("grid"), codes.get("community"))


def evaluate(
    state: DetectorState, spec: Spec, sample: Sample, topology: Topology
) -> list[IncidentEvent]:
    """Apply one sample, in event-time order, to the streak / open incident."""
    met = breach(spec, sample.value)
    incident = state.incident
    if incident is not None:
        if met is not None:
            return _add_evidence(state, spec, incident, sample, met)
        if not cleared(spec, sample.value):
            return []  # inside the hysteresis band: stays open, no new evidence
        return _auto_resolve(state, incident, sample)
    if met is None:
        state.streak = None
        return []
    streak = _extend_streak(state, spec, sample)
    held = (spec.count is not None and streak.count >= spec.count) or (
        spec.duration is not None
        and sample.at_us - streak.first_at_us >= spec.duration // MICROSECOND
    )
    if not held:
        return []
    return _open(state, spec, streak, sample, met, topology)


def _auto_resolve(state: DetectorState, incident: Incident, sample: Sample) -> list[IncidentEvent]:
    """The value crossed the clear value: resolve and forget the incident."""
    state.incident = None
    state.streak = None
    resolved = incident.model_copy(
        update={"updated_at": sample.at, "last_action": IncidentAction.auto_resolve}
    )
    return [IncidentEvent(action=IncidentAction.auto_resolve, incident=resolved)]


def _add_evidence(
    state: DetectorState,
    spec: Spec,
    incident: Incident,
    sample: Sample,
    met: tuple[Severity, float],
) -> list[IncidentEvent]:
    """A breach while open: new evidence, or an upgrade when the severity is higher."""
    severity, threshold = met
    ev = incident.evidence
    ids = list(ev.event_ids)
    for event_id in sample.event_ids:
        if len(ids) >= MAX_EVENT_IDS:
            break
        if event_id not in ids:
            ids.append(event_id)
    upgrade = severity.rank > incident.severity.rank
    at = sample.at
    evidence = ev.model_copy(
        update={
            "event_ids": tuple(ids),
            "peak_value": sample.value
            if ev.peak_value is None
            else peak(spec, ev.peak_value, sample.value),
            "threshold": threshold if upgrade else ev.threshold,
            "last_at": at,
            "count": ev.count + 1,
        }
    )
    action = IncidentAction.upgrade if upgrade else IncidentAction.evidence
    update: dict[str, Any] = {"evidence": evidence, "updated_at": at, "last_action": action}
    if upgrade:
        update["severity"] = severity
    state.incident = incident.model_copy(update=update)
    return [IncidentEvent(action=action, incident=state.incident)]


def _extend_streak(state: DetectorState, spec: Spec, sample: Sample) -> Streak:
    """Count a breaching sample into the current streak (starting one if needed)."""
    streak = state.streak
    if streak is None:
        streak = Streak(sample.at_us, 0, sample.value, [])
    streak.count += 1
    streak.peak = peak(spec, streak.peak, sample.value)
    for event_id in sample.event_ids:
        if len(streak.event_ids) < MAX_EVENT_IDS and event_id not in streak.event_ids:
            streak.event_ids.append(event_id)
    state.streak = streak
    return streak


def _open(
    state: DetectorState,
    spec: Spec,
    streak: Streak,
    sample: Sample,
    met: tuple[Severity, float],
    topology: Topology,
) -> list[IncidentEvent]:
    """The condition held long enough: open an incident with the streak as evidence."""
    severity, threshold = met
    state.streak = None
    first_at = streak.first_at
    district, street, grid, community = sample.areas
    state.incident = new_incident(
        incident_id=incident_id(spec.rule_id, state.subject, iso(first_at)),
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
            first_at=first_at,
            last_at=sample.at,
            count=streak.count,
        ),
        areas=AdminCodes(district=district, street=street, grid=grid, community=community),
        opened_at=sample.at,
        topology=topology,
    )
    return [IncidentEvent(action=IncidentAction.open, incident=state.incident)]
