"""The threshold rule family's entry in the rule-family registry (:mod:`pipeline.rules.families`).

Why a thin object over the module functions: the engine calls a family through one
protocol whatever the rule kind; the functions stay importable on their own for the
engine as it is today and for the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pipeline.models import Reading
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

    def subject_for(self, reading: Reading, rule: Rule, topology: Topology) -> str | None:
        """The sensor or area ``reading`` is evaluated under (None: not this rule's)."""
        return _step.subject_for(reading, rule, topology)

    def new_state(self, rule: Rule, subject: str) -> DetectorState:
        """The empty state of one (rule, subject)."""
        return _step.new_state(rule, subject)

    def step(
        self, state: DetectorState, reading: Reading, rule: Rule, topology: Topology
    ) -> tuple[DetectorState, list[IncidentEvent]]:
        """Feed one reading (see :func:`~pipeline.rules.detection.step.step`)."""
        return _step.step(state, reading, rule, topology)

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
