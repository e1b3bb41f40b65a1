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

from pipeline.aggregates.watermark import Progress
from pipeline.models import ReadingRow
from pipeline.rules.detection import step as _step
from pipeline.rules.detection.spec import spec_of
from pipeline.rules.detection.state import DetectorState
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import AreaScope, Rule, Topology


class ThresholdRunner:
    """One threshold rule made ready for one topology: its spec, the lateness in
    microseconds and the sensors registered in each area, looked up once."""

    __slots__ = ("_area_sensors", "_lateness", "_topology", "metric", "rule", "rule_id", "spec")

    def __init__(self, rule: Rule, topology: Topology) -> None:
        self.rule = rule
        self.spec = spec_of(rule)
        self.rule_id = self.spec.rule_id
        self.metric = self.spec.metric
        self._topology = topology
        facts = _facts(topology)
        self._lateness = facts.lateness_us
        self._area_sensors = facts.sensors

    def subject(self, reading: ReadingRow) -> str | None:
        """The sensor or area ``reading`` is evaluated under (None: not this rule's)."""
        if reading.metric != self.metric:
            return None
        level = self.spec.area_level
        if level is None:
            return reading.sensor_id
        return _step.area_subject(reading, level, self._topology)

    def new_state(self, subject: str) -> DetectorState:
        """The empty state of the rule for one subject."""
        return DetectorState(rule_id=self.rule_id, subject=subject)

    def step(
        self,
        state: DetectorState,
        reading: ReadingRow,
        partition: str | None,
        progress: Progress,
    ) -> tuple[DetectorState, list[IncidentEvent]]:
        """Feed one reading (see :func:`~pipeline.rules.detection.step.step_row`)."""
        expected: tuple[str, ...] = ()
        if state.clock is None and self.spec.area_level is not None:
            expected = self._area_sensors.get((state.subject, self.metric), ())
        return _step.step_row(
            state, reading, self.rule, self._topology,
            lateness=self._lateness, expected=expected, partition=partition, progress=progress,
        )  # fmt: skip

    def advance(
        self, state: DetectorState, watermark: datetime
    ) -> tuple[DetectorState, list[IncidentEvent]]:
        """Evaluate what ``watermark`` reached (buffered readings, closed windows)."""
        return _step.advance(state, watermark, self.rule, self._topology)

    def horizon(self) -> timedelta:
        """How far past a reading the watermark must go to evaluate it: its area window."""
        return self.spec.window or timedelta(0)


class ThresholdFamily:
    """Graded thresholds (above / below / outside) per sensor or per area window."""

    kind = "threshold"
    state_type = DetectorState

    def matches(self, rule: object) -> bool:
        """Whether ``rule`` is a threshold rule of the topology."""
        return isinstance(rule, Rule)

    def runner(self, rule: Rule, topology: Topology) -> ThresholdRunner:
        """The rule made ready for ``topology``."""
        return ThresholdRunner(rule, topology)

    def state_to_dict(self, state: DetectorState) -> dict[str, Any]:
        """The state as JSON types."""
        return state.to_dict()

    def state_from_dict(self, data: Mapping[str, Any]) -> DetectorState:
        """Inverse of :meth:`state_to_dict`."""
        return DetectorState.from_dict(data)


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
