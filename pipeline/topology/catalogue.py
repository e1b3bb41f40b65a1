"""The ``metrics`` section: the metric catalogue (canonical unit, accepted units, range).

Why: sensors report in many units; normalization converts every reading to its metric's
canonical unit and drops physically implausible values, so the catalogue decides both.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo, field_validator, model_validator

from pipeline.topology.base import Finite, Frozen
from pipeline.topology.errors import Loc, raise_issues
from pipeline.units import UnitError, canonical_unit_name, convert, is_known, same_dimension

__all__ = ["Metric"]


class Metric(Frozen):
    """A catalogue entry: canonical unit, units accepted on input, valid physical range."""

    unit: str
    accepted_units: tuple[str, ...] = ()
    range: tuple[Finite, Finite]
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_canonical(cls, data: Any) -> Any:
        """The canonical unit is always accepted, listed or not."""
        if isinstance(data, dict) and isinstance(data.get("unit"), str) and is_known(data["unit"]):
            accepted = data.get("accepted_units", [])
            if isinstance(accepted, list | tuple) and data["unit"] not in accepted:
                data = {**data, "accepted_units": [data["unit"], *accepted]}
        return data

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        try:
            return canonical_unit_name(value)
        except UnitError as exc:
            msg = f"{exc} (see docs/topology.md for known units)"
            raise ValueError(msg) from exc

    @field_validator("accepted_units")
    @classmethod
    def _same_dimension(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        unit = info.data.get("unit")
        issues: list[tuple[Loc, str]] = []
        names: list[str] = []
        for i, alias in enumerate(value):
            try:
                name = canonical_unit_name(alias)
            except UnitError as exc:
                issues.append(((i,), str(exc)))
                continue
            if isinstance(unit, str) and not same_dimension(name, unit):
                issues.append(((i,), f"{alias} cannot be converted to {unit}"))
            elif name not in names:
                names.append(name)
        raise_issues(issues)
        return tuple(names)

    @field_validator("range")
    @classmethod
    def _range_ascends(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not low < high:
            msg = f"min {low:g} must be less than max {high:g}"
            raise ValueError(msg)
        return value

    def accepts(self, unit: str) -> bool:
        """Whether readings in ``unit`` (any spelling) are accepted for this metric."""
        try:
            return canonical_unit_name(unit) in self.accepted_units
        except UnitError:
            return False

    def to_canonical(self, value: float, unit: str) -> float:
        """``value`` in ``unit`` converted to the canonical unit; ``UnitError`` if refused."""
        if not self.accepts(unit):
            msg = f"unit {unit!r} is not accepted (accepted: {', '.join(self.accepted_units)})"
            raise UnitError(msg)
        return convert(value, unit, self.unit)

    def in_range(self, value: float) -> bool:
        """Whether a canonical value is physically plausible."""
        return self.range[0] <= value <= self.range[1]
