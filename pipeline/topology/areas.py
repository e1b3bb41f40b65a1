"""The ``areas`` section: the administrative hierarchy (city > district > street > ...).

Why: incidents are routed and aggregates are rolled up along this hierarchy, so it must be
a tree with exactly one city, each area's parent exactly one level up, and street codes
that start with their district's code.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.models import AreaLevel
from pipeline.topology.base import LEVEL_DEPTH, LEVEL_ORDER, Code, Frozen, Text
from pipeline.topology.errors import ErrorList

__all__ = ["Area", "check_areas", "levels_present"]


class Area(Frozen):
    """One administrative area (city, district, street/town, grid, community)."""

    code: Code
    level: AreaLevel
    name: Text
    name_en: Text | None = None
    parent: Code | None = None


def levels_present(areas: Sequence[Area | None] | None) -> set[AreaLevel] | None:
    """Levels present, or None when unknown (areas invalid or partly invalid)."""
    if areas is None or None in areas:
        return None
    return {a.level for a in areas if a is not None}


def check_areas(areas: Sequence[Area | None]) -> ErrorList:
    """Unique codes, one city, and every parent one level up (None: an invalid area)."""
    errors: ErrorList = []
    first: dict[str, int] = {}
    for i, area in enumerate(areas):
        if area is None:
            continue
        if area.code in first:
            errors.append(
                (f"areas[{i}].code", f"duplicate code {area.code} (also areas[{first[area.code]}])")
            )
        first.setdefault(area.code, i)
    cities = [i for i, a in enumerate(areas) if a is not None and a.level == AreaLevel.city]
    if not cities and None not in areas:
        errors.append(("areas", "must contain exactly one city-level area"))
    for i in cities[1:]:
        errors.append((f"areas[{i}].level", f"a second city (areas[{cities[0]}] is the city)"))
    for i, area in enumerate(areas):
        if area is not None:
            errors += _check_parent(area, f"areas[{i}]", areas, first)
    return errors


def _check_parent(
    area: Area, where: str, areas: Sequence[Area | None], first: dict[str, int]
) -> ErrorList:
    """A city has no parent; any other area's parent is one level up (streets: by code)."""
    if area.level == AreaLevel.city:
        return [(f"{where}.parent", "a city has no parent")] if area.parent is not None else []
    expected = LEVEL_ORDER[LEVEL_DEPTH[area.level] - 1]
    if area.parent is None:
        return [(f"{where}.parent", f"is required: a {area.level} needs its {expected}")]
    parent = areas[first[area.parent]] if area.parent in first else None
    if parent is None and None in areas:
        return []  # the parent may be one of the areas that failed validation
    if parent is None:
        return [(f"{where}.parent", f"unknown area {area.parent}")]
    if parent.level != expected:
        return [
            (
                f"{where}.parent",
                f"{parent.code} is a {parent.level}; the parent of "
                f"a {area.level} must be a {expected}",
            )
        ]
    if area.level == AreaLevel.street and not area.code.startswith(parent.code):
        return [(f"{where}.code", f"must start with its district's code {parent.code}")]
    return []
