"""Threshold rules (the ``threshold`` rule family): a pure ``step(state, reading, rule, topology)``.

Why a pure step over plain state (shared/notes/style.md item 3): the worker only loads the
:class:`DetectorState` of one (rule, subject) from its table, calls :func:`step`, stores the
state back and produces the returned events; the same code runs in ``cityops dry-run`` and
in the tests, and two workers that split the subjects between them emit exactly what one
worker would (each subject's state only ever sees that subject's readings).

Modules: :mod:`.spec` (the rule read once: levels, conditions, clearing), :mod:`.state`
(what a (rule, subject) remembers, and its codec), :mod:`.step` (the step), :mod:`.family`
(the family's entry in :mod:`pipeline.rules.families`), :mod:`.detector` (many subjects at
once for dry runs and tests; the aggregates' breach check).

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
- **Area windows.** Tumbling windows of ``scope.window`` aligned to the Unix epoch (the
  :class:`~pipeline.aggregates.accumulator.Accumulator` the aggregates use); the
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

from pipeline.rules.detection.detector import BreachCheck, Detector
from pipeline.rules.detection.family import THRESHOLD, ThresholdFamily
from pipeline.rules.detection.spec import Level, Spec, breach, cleared, spec_of
from pipeline.rules.detection.state import DetectorState, Sample, Streak, state_key
from pipeline.rules.detection.step import advance, evaluate, new_state, step, subject_for
from pipeline.rules.lifecycle import MAX_EVENT_IDS, incident_id

__all__ = [
    "MAX_EVENT_IDS",
    "THRESHOLD",
    "BreachCheck",
    "Detector",
    "DetectorState",
    "Level",
    "Sample",
    "Spec",
    "Streak",
    "ThresholdFamily",
    "advance",
    "breach",
    "cleared",
    "evaluate",
    "incident_id",
    "new_state",
    "spec_of",
    "state_key",
    "step",
    "subject_for",
]
