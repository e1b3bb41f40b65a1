"""The pure step of a threshold rule: readings in, incident events out, per (rule, subject).

Why a pure step over plain state (shared/notes/style.md item 3): the worker loads the
:class:`~.state.DetectorState` of one (rule, subject), calls :func:`step`, stores the state
back and produces the returned events; the same code runs in ``cityops dry-run`` and in
the tests. The semantics are documented on :mod:`pipeline.rules.detection`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.aggregates.accumulator import Accumulator, window_start
from pipeline.aggregates.codec import from_micros as _from_micros
from pipeline.aggregates.codec import iso as _iso
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
from pipeline.rules.detection.spec import Spec, breach, cleared, peak, spec_of
from pipeline.rules.detection.state import DetectorState, Sample, Streak
from pipeline.rules.lifecycle import MAX_EVENT_IDS, IncidentEvent, incident_id, new_incident
from pipeline.topology import Rule, Topology

Events = tuple[DetectorState, list[IncidentEvent]]


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


def step(state: DetectorState, reading: Reading, rule: Rule, topology: Topology) -> Events:
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
        start = window_start(_micros(at), spec.window_us)
        window = state.windows.get(start)
        if window is None:
            window = state.windows[start] = Accumulator()
        window.add_event(reading.value, reading.event_id, MAX_EVENT_IDS)
    state.max_seen = at if state.max_seen is None else max(state.max_seen, at)
    return drain(state, spec, state.max_seen - topology.detection_lateness, topology)


def advance(state: DetectorState, watermark: datetime, rule: Rule, topology: Topology) -> Events:
    """Evaluate everything at or before ``watermark`` (buffered readings, closed windows).

    The caller promises that no reading older than ``watermark`` will be fed afterwards;
    one that is, is dropped as late (for area rules: one whose window has closed). Call it
    at end of input, or with a partition-wide event-time clock so that quiet subjects'
    windows still close.
    """
    return drain(state, spec_of(rule), watermark.astimezone(UTC), topology)


def _is_late(state: DetectorState, at: datetime, event_id: str) -> bool:
    """Older than the watermark, or not after the last evaluated reading (a replay)."""
    if state.watermark is not None and at < state.watermark:
        return True
    if state.last_at is None:
        return False
    return (at, event_id) <= (state.last_at, state.last_event_id)


def drain(state: DetectorState, spec: Spec, watermark: datetime, topology: Topology) -> Events:
    """Raise the state's watermark and evaluate every sample it has reached, in order."""
    if state.watermark is None or watermark > state.watermark:
        state.watermark = watermark
    events: list[IncidentEvent] = []
    for sample in _due_samples(state, spec, watermark, topology):
        # A window's sample stands for many readings: only its end orders what follows.
        state.last_at = sample.at
        state.last_event_id = sample.event_id if spec.area_level is None else ""
        events.extend(evaluate(state, spec, sample, topology))
    return state, events


def _due_samples(
    state: DetectorState, spec: Spec, watermark: datetime, topology: Topology
) -> list[Sample]:
    """Buffered readings at or before ``watermark``, or the area windows it closed."""
    due: list[Sample] = []
    if spec.area_level is None:
        while state.buffer and state.buffer[0].at <= watermark:
            due.append(state.buffer.pop(0))
        return due
    width = spec.window_us
    for start in sorted(state.windows):
        end = _from_micros(start + width)
        if end > watermark:
            break
        window = state.windows.pop(start)
        codes = topology.admin_codes(state.subject)
        areas = {str(lvl): str(code) for lvl, code in codes.items() if str(lvl) != "city"}
        due.append(
            Sample(
                at=end,
                event_id=window.first_event_id,
                value=window.statistic(spec.statistic),
                areas=areas,
                event_ids=list(window.event_ids),
            )
        )
    return due


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
        spec.duration is not None and sample.at - streak.first_at >= spec.duration
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
    evidence = ev.model_copy(
        update={
            "event_ids": tuple(ids),
            "peak_value": sample.value
            if ev.peak_value is None
            else peak(spec, ev.peak_value, sample.value),
            "threshold": threshold if upgrade else ev.threshold,
            "last_at": sample.at,
            "count": ev.count + 1,
        }
    )
    action = IncidentAction.upgrade if upgrade else IncidentAction.evidence
    update: dict[str, Any] = {"evidence": evidence, "updated_at": sample.at, "last_action": action}
    if upgrade:
        update["severity"] = severity
    state.incident = incident.model_copy(update=update)
    return [IncidentEvent(action=action, incident=state.incident)]


def _extend_streak(state: DetectorState, spec: Spec, sample: Sample) -> Streak:
    """Count a breaching sample into the current streak (starting one if needed)."""
    streak = state.streak
    if streak is None:
        streak = Streak(sample.at, 0, sample.value, [])
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
