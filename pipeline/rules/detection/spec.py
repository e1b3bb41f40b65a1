"""A threshold rule read once into a :class:`Spec`, and the conditions evaluated on it.

Why apart: the topology's YAML shape (condition, graded levels, clear value or band,
scope) is interpreted in exactly one function (:func:`spec_of`); the step, the aggregate
``breaches`` check and the tests all read the normalized :class:`Spec`.

- **Condition.** above: ``value > threshold``; below: ``value < threshold``; outside:
  ``value < low or value > high``. The severity of a sample is the highest level it meets
  (:func:`breach`).
- **Clearing.** above: ``<= clear``; below: ``>= clear``; outside: back inside
  ``[clear_low, clear_high]``; with no clear value: the first non-breaching value
  (:func:`cleared`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from pipeline.aggregates.accumulator import window_micros
from pipeline.models import Severity
from pipeline.topology import AreaScope, Band, Rule


@dataclass(frozen=True, slots=True)
class Level:
    """One graded level: the band is ``(low, high)``; above uses only ``low`` (the
    threshold), below only ``high``; outside both."""

    severity: Severity
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Spec:
    """The parts of a topology rule that evaluation needs, in one normalized shape.

    Why: evaluation reads only this, so the topology's YAML shape is interpreted
    in exactly one function (:func:`spec_of`).
    """

    rule_id: str
    metric: str
    condition: str  # above | below | outside
    levels: tuple[Level, ...]  # ascending severity
    count: int | None
    duration: timedelta | None
    clear_low: float | None
    clear_high: float | None
    area_level: str | None  # None: sensor scope
    window: timedelta | None
    statistic: str
    window_us: int = 0  # the window in microseconds (area scope; 0 for sensor scope)
    safe_low: float = -math.inf
    safe_high: float = math.inf
    """Values in [safe_low, safe_high] meet no level: the common case, decided at once."""


def breach(spec: Spec, value: float) -> tuple[Severity, float] | None:
    """The highest level ``value`` meets and that level's (violated) threshold, if any."""
    if spec.safe_low <= value <= spec.safe_high:
        return None
    met: tuple[Severity, float] | None = None
    for level in spec.levels:
        if spec.condition == "above" and level.low is not None and value > level.low:
            met = (level.severity, level.low)
        elif spec.condition == "below" and level.high is not None and value < level.high:
            met = (level.severity, level.high)
        elif spec.condition == "outside" and level.low is not None and level.high is not None:
            if value < level.low:
                met = (level.severity, level.low)
            elif value > level.high:
                met = (level.severity, level.high)
    return met


def cleared(spec: Spec, value: float) -> bool:
    """Whether ``value`` crosses the clear value (hysteresis) of an open incident."""
    low, high = spec.clear_low, spec.clear_high
    if spec.condition == "above" and low is not None:
        return value <= low
    if spec.condition == "below" and high is not None:
        return value >= high
    if spec.condition == "outside" and low is not None and high is not None:
        return low <= value <= high
    return breach(spec, value) is None


def extremity(spec: Spec, value: float) -> float:
    """How far into breach a value is, for choosing the evidence peak."""
    if spec.condition == "above":
        return value
    if spec.condition == "below":
        return -value
    first = spec.levels[0]
    low = first.low if first.low is not None else -math.inf
    high = first.high if first.high is not None else math.inf
    return max(value - high, low - value)


def peak(spec: Spec, current: float, value: float) -> float:
    """The more extreme of the current peak and a new breaching value."""
    return value if extremity(spec, value) > extremity(spec, current) else current


_SPECS: dict[int, tuple[Rule, Spec]] = {}


def spec_of(rule: Rule) -> Spec:
    """Read a topology rule into a :class:`Spec` (the one place that knows its shape).

    Cached per rule object (rules are frozen; the worker evaluates one per reading). The
    cache holds the rule itself, so its id cannot be reused by another object.
    """
    cached = _SPECS.get(id(rule))
    if cached is not None and cached[0] is rule:
        return cached[1]
    spec = _spec_of(rule)
    _SPECS[id(rule)] = (rule, spec)
    return spec


def _spec_of(rule: Rule) -> Spec:
    scope = rule.scope
    area_level: str | None = None
    window: timedelta | None = None
    statistic = "mean"
    if isinstance(scope, AreaScope):
        area_level = str(scope.area)
        window = scope.window
        statistic = str(scope.statistic)
    condition = str(rule.condition)
    levels: list[Level] = []
    for level in rule.levels:
        if condition == "outside":
            levels.append(Level(Severity(level.severity), level.low, level.high))
        elif condition == "above":
            levels.append(Level(Severity(level.severity), level.threshold, None))
        else:
            levels.append(Level(Severity(level.severity), None, level.threshold))
    clear = rule.clear
    clear_low: float | None = None
    clear_high: float | None = None
    if isinstance(clear, Band):
        clear_low, clear_high = clear.low, clear.high
    elif clear is not None:
        clear_low = clear_high = float(clear)
    hold = rule.for_
    safe_low, safe_high = _safe_band(condition, levels)
    return Spec(
        rule_id=str(rule.id),
        metric=str(rule.metric),
        condition=condition,
        levels=tuple(levels),
        count=hold.count,
        duration=hold.duration,
        clear_low=clear_low,
        clear_high=clear_high,
        area_level=area_level,
        window=window,
        statistic=statistic,
        window_us=0 if window is None else window_micros(window),
        safe_low=safe_low,
        safe_high=safe_high,
    )


def _safe_band(condition: str, levels: list[Level]) -> tuple[float, float]:
    """The values that meet no level: every threshold on the good side of them."""
    lows = [level.low for level in levels if level.low is not None]
    highs = [level.high for level in levels if level.high is not None]
    if condition == "above":
        return -math.inf, min(lows, default=math.inf)
    if condition == "below":
        return max(highs, default=-math.inf), math.inf
    return max(lows, default=-math.inf), min(highs, default=math.inf)
