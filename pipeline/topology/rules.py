"""The ``rules`` section: graded threshold rules (above / below / outside a band).

Why: a rule turns readings into incidents of a severity, so its levels must grade sensibly
(each severity once, from blue up, thresholds stricter with severity, the band wider) and
its ``clear`` value must lie on the safe side of the lowest level, or incidents would
flap. These checks run per rule; :func:`check_rule_references` checks what a rule names
in other sections (its metric and its range, the scope's area level).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from pipeline.models import AreaLevel, Severity
from pipeline.topology.base import SEVERITY_RANK, Finite, Frozen, Ident, MetricName, repeated_ids
from pipeline.topology.catalogue import Metric
from pipeline.topology.durations import Duration
from pipeline.topology.errors import ErrorList, Issues, Loc, raise_issues

__all__ = [
    "AreaScope",
    "Band",
    "Clear",
    "Hold",
    "Level",
    "Rule",
    "Scope",
    "check_rule_references",
]


class Band(Frozen):
    """A closed interval ``[low, high]``."""

    low: Finite
    high: Finite


class Level(Frozen):
    """One severity step of a rule: ``threshold`` for above/below, ``low``/``high`` for outside."""

    severity: Severity
    threshold: Finite | None = None
    low: Finite | None = None
    high: Finite | None = None


class AreaScope(Frozen):
    """Evaluate a statistic of all readings of an area over a tumbling window."""

    area: AreaLevel
    window: Duration
    statistic: Literal["mean", "min", "max", "sum", "count"] = "mean"


class Hold(Frozen):
    """How long a condition must hold: ``count`` consecutive readings or a ``duration``."""

    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    duration: Duration | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Hold:
        if (self.count is None) == (self.duration is None):
            raise Issues([((), "give exactly one of count or duration")])
        return self


def _scope_tag(value: Any) -> str:
    return "<area>" if isinstance(value, dict | AreaScope) else "<sensor>"


def _clear_tag(value: Any) -> str:
    return "<band>" if isinstance(value, dict | Band) else "<number>"


Scope = Annotated[
    Annotated[Literal["sensor"], Tag("<sensor>")] | Annotated[AreaScope, Tag("<area>")],
    Discriminator(_scope_tag),
]
Clear = Annotated[
    Annotated[Finite, Tag("<number>")] | Annotated[Band, Tag("<band>")],
    Discriminator(_clear_tag),
]


class Rule(Frozen):
    """A graded threshold rule on one metric (above / below / outside a band)."""

    id: Ident
    metric: MetricName
    description: str = ""
    scope: Scope = "sensor"
    condition: Literal["above", "below", "outside"]
    levels: Annotated[tuple[Level, ...], Field(min_length=1, max_length=4)]
    for_: Hold = Field(default=Hold(count=1), alias="for")
    clear: Clear | None = None

    @model_validator(mode="after")
    def _levels_are_graded(self) -> Rule:
        raise_issues(_check_levels(self))
        return self


# --------------------------------------------------------------------------- per-rule checks

_Found = list[tuple[Loc, str]]


def _check_levels(rule: Rule) -> _Found:
    """Shape of each level, severity order, monotonic thresholds, clear on the safe side."""
    issues: _Found = []
    shaped: list[tuple[int, Level]] = []
    for i, level in enumerate(rule.levels):
        here = _check_shape(rule.condition, level, i)
        issues += here
        if not here:
            shaped.append((i, level))
    issues += _check_severity_order(rule.levels)
    for (_, prev), (i, level) in zip(shaped, shaped[1:], strict=False):
        issues += _check_step(rule.condition, prev, level, i)
    issues += _check_clear(rule, shaped[0][1] if shaped and shaped[0][0] == 0 else None)
    return issues


def _check_shape(condition: str, level: Level, i: int) -> _Found:
    """``threshold`` for above/below; ``low`` < ``high`` and no threshold for outside."""
    here: _Found = []
    if condition == "outside":
        if level.threshold is not None:
            here.append((("levels", i, "threshold"), "use low and high for 'outside'"))
        for side in ("low", "high"):
            if getattr(level, side) is None:
                here.append((("levels", i, side), "is required for condition 'outside'"))
        if level.low is not None and level.high is not None and not level.low < level.high:
            here.append((("levels", i, "high"), f"must be greater than low ({level.low:g})"))
    else:
        if level.threshold is None:
            here.append((("levels", i, "threshold"), f"is required for condition {condition!r}"))
        for side in ("low", "high"):
            if getattr(level, side) is not None:
                here.append((("levels", i, side), "only for condition 'outside'"))
    return here


def _check_severity_order(levels: Sequence[Level]) -> _Found:
    """Each severity at most once, listed from blue up."""
    issues: _Found = []
    seen: dict[Severity, int] = {}
    for i, level in enumerate(levels):
        if level.severity in seen:
            issues.append(
                (
                    ("levels", i, "severity"),
                    f"{level.severity} is already levels[{seen[level.severity]}] "
                    "(each severity at most once per rule)",
                )
            )
        elif seen and SEVERITY_RANK[level.severity] < max(SEVERITY_RANK[s] for s in seen):
            issues.append(
                (
                    ("levels", i, "severity"),
                    f"{level.severity} is listed after a higher severity; list levels from blue up",
                )
            )
        seen.setdefault(level.severity, i)
    return issues


def _check_step(condition: str, prev: Level, level: Level, i: int) -> _Found:
    """A level is stricter than the one before: higher (above), lower (below), wider."""
    name = prev.severity.value
    if condition == "above":
        assert level.threshold is not None and prev.threshold is not None  # noqa: S101
        if not level.threshold > prev.threshold:
            return [
                (
                    ("levels", i, "threshold"),
                    f"must be greater than {prev.threshold:g} (the {name} level)",
                )
            ]
        return []
    if condition == "below":
        assert level.threshold is not None and prev.threshold is not None  # noqa: S101
        if not level.threshold < prev.threshold:
            return [
                (
                    ("levels", i, "threshold"),
                    f"must be less than {prev.threshold:g} (the {name} level)",
                )
            ]
        return []
    return _check_widening(prev, level, i)


def _check_widening(prev: Level, level: Level, i: int) -> _Found:
    """For 'outside', each band contains the one before it and is wider."""
    assert level.low is not None and prev.low is not None  # noqa: S101
    assert level.high is not None and prev.high is not None  # noqa: S101
    name = prev.severity.value
    issues: _Found = []
    if level.low > prev.low:
        issues.append(
            (
                ("levels", i, "low"),
                f"must be at most {prev.low:g} (the {name} level): the band widens with severity",
            )
        )
    if level.high < prev.high:
        issues.append(
            (
                ("levels", i, "high"),
                f"must be at least {prev.high:g} (the {name} level): the band widens with severity",
            )
        )
    if level.low == prev.low and level.high == prev.high:
        issues.append((("levels", i), f"must be wider than the {name} band"))
    return issues


def _check_clear(rule: Rule, lowest: Level | None) -> _Found:
    """``clear`` has the condition's shape and lies on the safe side of the lowest level."""
    clear = rule.clear
    if clear is None:
        return []
    where: Loc = ("clear",)
    if rule.condition == "outside":
        if not isinstance(clear, Band):
            return [(where, "must be a band {low, high} for condition 'outside'")]
        if not clear.low < clear.high:
            return [(("clear", "high"), f"must be greater than low ({clear.low:g})")]
        if lowest is None or lowest.low is None or lowest.high is None:
            return []
        name = lowest.severity.value
        issues: list[tuple[Loc, str]] = []
        if clear.low < lowest.low:
            issues.append((("clear", "low"), f"must be at least {lowest.low:g} (the {name} level)"))
        if clear.high > lowest.high:
            issues.append(
                (("clear", "high"), f"must be at most {lowest.high:g} (the {name} level)")
            )
        return issues
    if isinstance(clear, Band):
        return [(where, f"must be a number for condition {rule.condition!r}")]
    if lowest is None or lowest.threshold is None:
        return []
    name = lowest.severity.value
    if rule.condition == "above" and not clear < lowest.threshold:
        return [(where, f"must be below {lowest.threshold:g} (the {name} threshold)")]
    if rule.condition == "below" and not clear > lowest.threshold:
        return [(where, f"must be above {lowest.threshold:g} (the {name} threshold)")]
    return []


# --------------------------------------------------------------------------- references


def check_rule_references(
    rules: Sequence[Rule | None],
    metrics: Mapping[str, Metric] | None,
    metric_names: Collection[str] | None,
    levels: Collection[AreaLevel] | None,
) -> ErrorList:
    """Unique ids; the scope's area level exists; the metric exists and holds the levels.

    ``None`` for ``metric_names`` or ``levels``: unknown (that section failed), not checked.
    """
    errors: ErrorList = []
    repeated = repeated_ids(r.id if r is not None else None for r in rules)
    for i, rule in enumerate(rules):
        if rule is None:
            continue
        where = f"rules[{i}]"
        if i in repeated:
            errors.append((f"{where}.id", f"duplicate rule id {rule.id!r}"))
        if isinstance(rule.scope, AreaScope) and levels is not None:
            if rule.scope.area not in levels:
                errors.append((f"{where}.scope.area", f"no area has level {rule.scope.area}"))
        if metric_names is not None and rule.metric not in metric_names:
            known = ", ".join(sorted(metric_names)) or "none"
            errors.append((f"{where}.metric", f"unknown metric {rule.metric!r} (known: {known})"))
            continue
        metric = metrics.get(rule.metric) if metrics is not None else None
        if metric is not None:
            errors += _check_in_range(rule, metric, where)
    return errors


def _check_in_range(rule: Rule, metric: Metric, where: str) -> ErrorList:
    """Every threshold and band edge lies within the metric's physical range."""
    errors: ErrorList = []
    low, high = metric.range
    for j, level in enumerate(rule.levels):
        for side in ("threshold", "low", "high"):
            value = getattr(level, side)
            if value is not None and not low <= value <= high:
                errors.append(
                    (
                        f"{where}.levels[{j}].{side}",
                        f"{value:g} is outside {rule.metric}'s range "
                        f"[{low:g}, {high:g}] {metric.unit}",
                    )
                )
    return errors
