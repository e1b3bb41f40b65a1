"""The closed vocabularies of the events: severity, area levels, incident states and
actions, dead-letter reasons.

Why: string enums serialize as plain strings (the contract stays readable JSON) while the
code compares members, never string literals.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AreaLevel",
    "IncidentAction",
    "IncidentKind",
    "IncidentState",
    "RejectReason",
    "Severity",
    "SystemAction",
    "UnitAction",
]


class Severity(StrEnum):
    """China's four-colour warning scale: blue IV < yellow III < orange II < red I."""

    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        """0 for blue up to 3 for red, for comparisons."""
        return _SEVERITY_RANK[self]

    # Ordered by rank, not alphabetically ("orange" < "red" < "yellow" would be wrong).
    def __lt__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return str.__lt__(self, other)

    def __le__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank <= other.rank
        return str.__le__(self, other)

    def __gt__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank > other.rank
        return str.__gt__(self, other)

    def __ge__(self, other: str) -> bool:
        if isinstance(other, Severity):
            return self.rank >= other.rank
        return str.__ge__(self, other)


_SEVERITY_RANK = {Severity.blue: 0, Severity.yellow: 1, Severity.orange: 2, Severity.red: 3}


class AreaLevel(StrEnum):
    """Administrative levels, top down."""

    city = "city"
    district = "district"
    street = "street"
    grid = "grid"
    community = "community"

    @property
    def depth(self) -> int:
        """0 for city, increasing downwards."""
        return _LEVEL_DEPTH[self]


_LEVEL_DEPTH = {level: i for i, level in enumerate(AreaLevel)}


class IncidentState(StrEnum):
    """Lifecycle states; an automatic clear is a resolve."""

    open = "open"
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    resolved = "resolved"
    closed = "closed"


class IncidentKind(StrEnum):
    """Why an incident exists."""

    threshold_breach = "threshold_breach"
    report_cluster = "report_cluster"
    urgent_report = "urgent_report"


class IncidentAction(StrEnum):
    """Every change an incident can go through (from detection or from handling units):
    :class:`UnitAction` is what a unit may send, :class:`SystemAction` what only the
    pipeline does."""

    open = "open"
    upgrade = "upgrade"
    evidence = "evidence"
    dispatch = "dispatch"
    acknowledge = "acknowledge"
    resolve = "resolve"
    auto_resolve = "auto_resolve"
    close = "close"
    reopen = "reopen"
    comment = "comment"
    escalate = "escalate"


class UnitAction(StrEnum):
    """What a handling unit may send on the updates topic (the only values it accepts)."""

    dispatch = "dispatch"
    acknowledge = "acknowledge"
    resolve = "resolve"
    close = "close"
    reopen = "reopen"
    comment = "comment"


class SystemAction(StrEnum):
    """What only the pipeline does: detection (open, evidence, upgrade, auto_resolve), the
    SLA timer (escalate) and a reopen of a worsening incident a unit had resolved (reopen,
    by ``system``, so it also appears among the unit actions)."""

    open = "open"
    evidence = "evidence"
    upgrade = "upgrade"
    auto_resolve = "auto_resolve"
    escalate = "escalate"
    reopen = "reopen"


class RejectReason(StrEnum):
    """Stable, machine-readable reasons a record was dead-lettered."""

    invalid_json = "invalid_json"
    unknown_format = "unknown_format"
    schema_violation = "schema_violation"
    unknown_sensor = "unknown_sensor"
    unknown_metric = "unknown_metric"
    unknown_category = "unknown_category"
    unit_not_convertible = "unit_not_convertible"
    out_of_range = "out_of_range"
    outside_jurisdiction = "outside_jurisdiction"
    oversized = "oversized"
    duplicate = "duplicate"
    unknown_incident = "unknown_incident"
    invalid_transition = "invalid_transition"
    unit_outside_area = "unit_outside_area"
    clock_skew = "clock_skew"
    too_old = "too_old"
    processing_error = "processing_error"
    unsigned = "unsigned"
    bad_signature = "bad_signature"
    unknown_unit = "unknown_unit"
