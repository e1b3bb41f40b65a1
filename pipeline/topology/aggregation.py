"""The ``aggregation`` section: event-time tumbling windows per area level.

Why: dashboards and the store read per-window statistics by street, district and city, and
per grid cell (the heat map; needs the ``grid`` section);
the window, the lateness a window waits for, and the levels are the deployment's choice.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

from pydantic import Field, field_validator

from pipeline.models import AreaLevel
from pipeline.topology.base import Frozen
from pipeline.topology.durations import Duration, NonNegativeDuration
from pipeline.topology.errors import ErrorList, Loc, raise_issues

__all__ = ["Aggregation", "check_aggregation_levels"]

_AGGREGATABLE = (AreaLevel.grid, AreaLevel.street, AreaLevel.district, AreaLevel.city)


class Aggregation(Frozen):
    """Windowed aggregates: tumbling ``window``, lateness allowed, levels to emit."""

    window: Duration = Field(default="1m", validate_default=True)
    allowed_lateness: NonNegativeDuration = Field(default="30s", validate_default=True)
    levels: Annotated[tuple[AreaLevel, ...], Field(min_length=1)] = (
        AreaLevel.street,
        AreaLevel.district,
        AreaLevel.city,
    )

    @field_validator("levels")
    @classmethod
    def _aggregatable(cls, value: tuple[AreaLevel, ...]) -> tuple[AreaLevel, ...]:
        issues: list[tuple[Loc, str]] = []
        for i, level in enumerate(value):
            if level not in _AGGREGATABLE:
                issues.append(((i,), "aggregates exist for grid, street, district and city only"))
            elif level in value[:i]:
                issues.append(((i,), f"{level} is listed twice"))
        raise_issues(issues)
        return value


def check_aggregation_levels(
    aggregation: Aggregation, levels: Collection[AreaLevel], *, grid: bool = False
) -> ErrorList:
    """Each level aggregated is a level some area has (the grid: a ``grid`` section)."""
    errors: ErrorList = []
    for i, level in enumerate(aggregation.levels):
        if level == AreaLevel.grid and not grid:
            errors.append(
                (
                    f"aggregation.levels[{i}]",
                    "grid needs a grid section (grid: {kind: h3, resolution: 9})",
                )
            )
        elif level != AreaLevel.grid and level not in levels:
            errors.append((f"aggregation.levels[{i}]", f"no area has level {level}"))
    return errors
