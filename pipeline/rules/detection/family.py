"""The threshold rule family's entry in the rule-family registry (:mod:`pipeline.rules.families`).

Why a thin object over the module functions: the engine calls a family through one
protocol whatever the rule kind; the functions stay importable on their own for the tests.
What the step needs of the topology besides the rule (the lateness in microseconds, the
sensors registered in each area) is worked out once per topology, not per reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.models import ReadingRow
from pipeline.rules.detection import step as _step
from pipeline.rules.detection.state import DetectorState
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import AreaScope, Rule, Topology


class ThresholdFamily:
    """Graded thresholds (above / below / outside) per sensor or per area window."""

    kind = "threshold"
    state_type = DetectorState

    def matches(self, rule: object) -> bool:
        """Whether ``rule`` is a threshold rule of the topology."""
        return isinstance(rule, Rule)

    def subject_for(self, reading: ReadingRow, rule: Rule, topology: Topology) -> str | None:
        """The sensor or area ``reading`` is evaluated under (None: not this rule's)."""
        return _step.subject_for(reading, rule, topology)

    def new_state(self, rule: Rule, subject: str) -> DetectorState:
        """The empty state of one (rule, subject)."""
        return _step.new_state(rule, subject)

    def step(
        self,
        state: DetectorState,
        reading: ReadingRow,
        rule: Rule,
        topology: Topology,
        *,
        partition: str | None = None,
        progress: Mapping[str, int] | None = None,
    ) -> tuple[DetectorState, list[IncidentEvent]]:
        """Feed one reading (see :func:`~pipeline.rules.detection.step.step_row`)."""
        facts = _facts(topology)
        expected: tuple[str, ...] = ()
        if state.clock is None and isinstance(rule.scope, AreaScope):
            expected = facts.sensors.get((state.subject, str(rule.metric)), ())
        return _step.step_row(
            state, reading, rule, topology,
            lateness=facts.lateness_us, expected=expected, partition=partition,
            progress=progress or {},
        )  # fmt: skip

    def advance(
        self, state: DetectorState, watermark: datetime, rule: Rule, topology: Topology
    ) -> tuple[DetectorState, list[IncidentEvent]]:
        """Evaluate what ``watermark`` reached (buffered readings, closed windows)."""
        return _step.advance(state, watermark, rule, topology)

    def state_to_dict(self, state: DetectorState) -> dict[str, Any]:
        """The state as JSON types."""
        return state.to_dict()

    def state_from_dict(self, data: Mapping[str, Any]) -> DetectorState:
        """Inverse of :meth:`state_to_dict`."""
        return DetectorState.from_dict(data)

    def horizon(self, rule: Rule) -> timedelta:
        """How far past a reading the watermark must go to evaluate it: its area window."""
        return rule.scope.window if isinstance(rule.scope, AreaScope) else timedelta(0)


#: The one threshold family object the registry holds.
THRESHOLD = ThresholdFamily()


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the step needs of one topology besides each rule."""

    lateness_us: int
    sensors: dict[tuple[str, str], tuple[str, ...]]
    """(area code, metric) -> the sensors registered for it in that area or below."""


_FACTS: dict[int, tuple[Topology, _Facts]] = {}


def _facts(topology: Topology) -> _Facts:
    cached = _FACTS.get(id(topology))
    if cached is not None and cached[0] is topology:
        return cached[1]
    area_metrics = {
        (str(rule.scope.area), str(rule.metric))
        for rule in topology.rules
        if isinstance(rule, Rule) and isinstance(rule.scope, AreaScope)
    }
    levels = {level for level, _ in area_metrics}
    sensors: dict[tuple[str, str], list[str]] = {}
    for sensor in topology.sensors if area_metrics else ():
        for level, code in topology.admin_codes(sensor.area).items():
            if str(level) not in levels:
                continue
            for metric in sensor.metrics:
                if (str(level), metric) in area_metrics:
                    sensors.setdefault((str(code), metric), []).append(sensor.id)
    facts = _Facts(_step.lateness_us(topology), {key: tuple(ids) for key, ids in sensors.items()})
    if len(_FACTS) >= 8:
        _FACTS.clear()
    _FACTS[id(topology)] = (topology, facts)
    return facts
