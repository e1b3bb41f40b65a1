"""The ``areas`` section: the administrative hierarchy (city > district > street > ...).

Why: incidents are routed and aggregates are rolled up along this hierarchy, so it must be
a tree with exactly one city, each area's parent exactly one level up, and street codes
that start with their district's code. The grid level is computed (``grid`` section), never
listed, so a community's parent is its street (or a listed grid area).

A city has hundreds of streets and thousands of communities, so an item of the list may
name a CSV file of areas of one level instead: ``{file: shanghai/streets.csv, level:
street}`` with columns ``code,parent,name`` (and optionally ``name_en``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline.models import AreaLevel
from pipeline.topology.base import LEVEL_DEPTH, LEVEL_ORDER, Code, Frozen, Text
from pipeline.topology.errors import ErrorList, convert

__all__ = ["Area", "area_files", "check_areas", "expand_area_files", "levels_present"]

_FILE_COLUMNS = ("code", "parent", "name", "name_en")


class Area(Frozen):
    """One administrative area (city, district, street/town, grid, community)."""

    code: Code
    level: AreaLevel
    name: Text
    name_en: Text | None = None
    parent: Code | None = None


def area_files(items: object) -> list[str]:
    """The area files an ``areas`` list names (relative paths, in order)."""
    if not isinstance(items, list):
        return []
    return [
        str(item["file"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("file"), str)
    ]


def expand_area_files(items: list[Any], base_dir: Path) -> tuple[list[Any], ErrorList]:
    """The ``areas`` list with each ``{file, level}`` item replaced by the file's rows.

    Each row is validated here so that a bad one is reported by file and line; bad rows
    are dropped (their errors returned), good ones become plain area mappings."""
    out: list[Any] = []
    errors: ErrorList = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "file" in item:
            rows, file_errors = _read_area_file(item, f"areas[{i}]", base_dir)
            out += rows
            errors += file_errors
        else:
            out.append(item)
    return out, errors


_AREA = TypeAdapter(Area)


def _read_area_file(
    spec: dict[Any, Any], where: str, base_dir: Path
) -> tuple[list[Any], ErrorList]:
    """The rows of one area file as mappings with the spec's level, or why not."""
    extra = sorted(str(k) for k in spec if k not in ("file", "level"))
    if extra:
        return [], [(where, f"unknown key(s) {', '.join(extra)} (an area file takes file, level)")]
    rel, level = spec.get("file"), spec.get("level")
    if not isinstance(rel, str) or not rel:
        return [], [(f"{where}.file", "must be a path to a CSV file of areas")]
    if level not in {lv.value for lv in AreaLevel} - {"city"}:
        return [], [(f"{where}.level", "must be district, street, grid or community")]
    path = base_dir / rel
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [(f"{where}.file", f"cannot read {path}: {exc}")]
    columns = reader.fieldnames or []
    missing = [c for c in _FILE_COLUMNS[:3] if c not in columns]
    unknown = [c for c in columns if c not in _FILE_COLUMNS]
    if missing or unknown:
        problem = f"lacks column(s) {', '.join(missing)}" if missing else ""
        problem += (
            f"{'; ' if problem else ''}unknown column(s) {', '.join(unknown)}" if unknown else ""
        )
        return [], [(f"{where}.file", f"{rel} {problem} (columns: code,parent,name[,name_en])")]
    rows: list[Any] = []
    errors: ErrorList = []
    for line, row in enumerate(reader, start=2):
        item = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
        item["level"] = level
        try:
            _AREA.validate_python(item)
        except ValidationError as exc:
            at = f"{where} ({rel} line {line})"
            errors += [(f"{at}.{path}" if path else at, msg) for path, msg in convert(exc, ())]
            continue
        rows.append(item)
    return rows, errors


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
    if area.level == AreaLevel.community and area.parent is not None:
        parent_area = areas[first[area.parent]] if area.parent in first else None
        if parent_area is not None and parent_area.level == AreaLevel.street:
            expected = AreaLevel.street  # the grid between them is computed, not listed
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
