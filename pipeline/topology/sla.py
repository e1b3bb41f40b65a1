"""The ``sla`` and ``escalation`` sections: deadlines per severity, and who is told next.

Why: every incident has an acknowledge and a resolve deadline by its severity, so every
severity needs an SLA; an overdue incident moves up the area hierarchy, never above
``escalation.top_level``.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import model_validator

from pipeline.models import AreaLevel
from pipeline.topology.base import SEVERITY_ORDER, Frozen
from pipeline.topology.durations import Duration
from pipeline.topology.errors import ErrorList, Issues

__all__ = ["Escalation", "Sla", "check_escalation", "check_sla_coverage"]


class Sla(Frozen):
    """Deadlines from opening: acknowledge within ``ack``, resolve within ``resolve``."""

    ack: Duration
    resolve: Duration

    @model_validator(mode="after")
    def _ack_first(self) -> Sla:
        if self.ack > self.resolve:
            raise Issues([(("ack",), "must not be longer than resolve")])
        return self


class Escalation(Frozen):
    """Overdue incidents move one level up, at most up to ``top_level``."""

    enabled: bool = True
    top_level: AreaLevel = AreaLevel.city


def check_sla_coverage(severities: Collection[str]) -> ErrorList:
    """Every severity has an SLA (``severities``: the keys the sla section gives)."""
    return [
        (f"sla.{s.value}", "is required: every severity needs an SLA")
        for s in SEVERITY_ORDER
        if s.value not in severities
    ]


def check_escalation(escalation: Escalation, levels: Collection[AreaLevel]) -> ErrorList:
    """The top level escalation may reach is a level some area has."""
    if escalation.top_level not in levels:
        return [("escalation.top_level", f"no area has level {escalation.top_level}")]
    return []
