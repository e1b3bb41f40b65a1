"""Threshold rules over many subjects at once: the dry-run/test driver and the breach check.

Why apart from the step: the worker keeps (rule, subject) states in a table and calls
:func:`~.step.step` itself; :class:`Detector` does the same over a dict for dry runs and
tests. :class:`BreachCheck` answers the aggregates' per-reading ``breaches`` question
from the same :class:`~.spec.Spec` the rules are evaluated on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.models import Reading, ReadingRow
from pipeline.rules.detection.spec import Spec, breach, spec_of
from pipeline.rules.detection.state import DetectorState, state_key
from pipeline.rules.detection.step import advance, new_state, step, subject_for
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import Rule, Topology


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


class BreachCheck:
    """Does one reading's value breach any rule of its metric? (for aggregate `breaches`).

    Only threshold rules count (other rule families judge series, not single values).
    Built once per topology: rule specs are grouped by metric, so the hot path is one dict
    lookup and a few comparisons. Area rules count too: their threshold applies to the
    reading's value as much as to the window statistic.
    """

    def __init__(self, topology: Topology) -> None:
        self._by_metric: dict[str, list[Spec]] = {}
        for rule in topology.rules:
            if not isinstance(rule, Rule):
                continue  # another rule family: its readings are not threshold breaches
            spec = spec_of(rule)
            self._by_metric.setdefault(spec.metric, []).append(spec)
        # Per metric, the values inside every rule's safe band (`Spec.safe_low..high`)
        # breach none of them: the common case, decided by two comparisons.
        self._safe: dict[str, tuple[float, float]] = {
            metric: (max(s.safe_low for s in specs), min(s.safe_high for s in specs))
            for metric, specs in self._by_metric.items()
        }

    def __call__(self, reading: Reading | ReadingRow) -> bool:
        return self.value(reading.metric, reading.value)

    def value(self, metric: str, value: float) -> bool:
        """Whether `value` of `metric` breaches any threshold rule of that metric."""
        safe = self._safe.get(metric)
        if safe is None or safe[0] <= value <= safe[1]:
            return False
        return any(breach(spec, value) for spec in self._by_metric[metric])
