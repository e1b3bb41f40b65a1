"""The second validation pass: references between sections that each validated alone.

Why: each section is validated on its own first, so one bad section does not hide the
errors of another. This pass then checks what sections say about each other (parents,
sensors' areas and metrics, rule metrics, SLA coverage, levels that must exist), in a
fixed order, through each section's own ``check_*`` function. A section that failed
validation is missing from ``sections`` (or partial: ``None`` for its invalid items);
references into it are checked against the names its raw YAML lists, or skipped.

:func:`placement_warnings` runs on a loaded topology: what is valid but will surprise
(located reports that no boundary can place), listed by path like errors, never fatal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.models import AreaLevel, Severity
from pipeline.topology.aggregation import Aggregation, check_aggregation_levels
from pipeline.topology.areas import Area, check_areas, levels_present
from pipeline.topology.catalogue import Metric
from pipeline.topology.errors import ErrorList
from pipeline.topology.reports import ReportCategory, check_categories
from pipeline.topology.rules import Rule, check_rule_references
from pipeline.topology.sensors import (
    Datastream,
    Sensor,
    check_datastreams,
    check_sensors,
    sensors_by_id,
)
from pipeline.topology.sla import Escalation, Sla, check_escalation, check_sla_coverage
from pipeline.topology.topics import Topics, check_topic_names

if TYPE_CHECKING:  # the model runs cross_check while it validates
    from pipeline.topology.model import Topology

__all__ = ["cross_check", "placement_warnings"]

#: Districts named one by one in a warning (then "and N more").
_NAMED = 8


def cross_check(
    sections: Mapping[str, Any], known: Mapping[str, set[str]] | None = None
) -> ErrorList:
    """References between sections.

    Sections missing from ``sections`` (they failed validation) are skipped; references
    into them are still checked against ``known`` names (``areas``, ``metrics``,
    ``sensors``: the identifiers the raw section lists) when given.
    """
    fallback = known or {}
    partial: set[str] = sections.get("_partial", set())
    areas: Sequence[Area | None] | None = sections.get("areas")
    sensors: Sequence[Sensor | None] | None = sections.get("sensors")
    metrics: dict[str, Metric] | None = sections.get("metrics")
    metric_names = (
        set(metrics)
        if metrics is not None and "metrics" not in partial
        else fallback.get("metrics")
    )
    by_code = {a.code for a in areas or () if a is not None}
    area_codes = by_code if areas is not None and None not in areas else fallback.get("areas")
    by_id = sensors_by_id(sensors)
    sensor_ids = (
        set(by_id) if sensors is not None and None not in sensors else fallback.get("sensors")
    )
    levels = levels_present(areas)

    errors: ErrorList = check_areas(areas) if areas is not None else []
    if sensors is not None:
        errors += check_sensors(sensors, area_codes, metric_names)
    datastreams: dict[str, Datastream] = sections.get("datastreams") or {}
    errors += check_datastreams(datastreams, by_id, sensor_ids, metric_names)
    rules: Sequence[Rule | None] = sections.get("rules") or ()
    errors += check_rule_references(rules, metrics, metric_names, levels)
    categories: Sequence[ReportCategory | None] = sections.get("report_categories") or ()
    errors += check_categories(categories)
    errors += _check_other_sections(sections, fallback, levels, by_code)
    return errors


def _check_other_sections(
    sections: Mapping[str, Any],
    fallback: Mapping[str, set[str]],
    levels: set[AreaLevel] | None,
    area_codes: set[str],
) -> ErrorList:
    """SLA coverage, levels escalation and aggregation name, the longest topic name."""
    errors: ErrorList = []
    sla: dict[Severity, Sla] | None = sections.get("sla")
    sla_keys = {str(s) for s in sla} if sla is not None else fallback.get("sla")
    if sla_keys is not None:
        errors += check_sla_coverage(sla_keys)
    escalation: Escalation | None = sections.get("escalation")
    if escalation is not None and levels is not None:
        errors += check_escalation(escalation, levels)
    aggregation: Aggregation | None = sections.get("aggregation")
    if aggregation is not None and levels is not None:
        grid = sections.get("grid") is not None
        errors += check_aggregation_levels(aggregation, levels, grid=grid)
    topics: Topics | None = sections.get("topics")
    if topics is not None:
        errors += check_topic_names(topics, area_codes)
    return errors


def placement_warnings(topology: Topology) -> ErrorList:
    """Where boundaries and located reports cannot agree, by path (valid, but surprising).

    A located report (Open311 ``lat``/``long``, a canonical ``location``) is placed by the
    boundaries: without any, it is the city's (in no district, unless it names an area);
    in a district that no boundary covers (its own or one below it), it is outside every
    polygon and dead-lettered ``outside_jurisdiction``.
    """
    if not topology.report_categories:
        return []
    districts = topology.areas_at(AreaLevel.district)
    features = topology.boundary_features()
    if not features:
        return [
            (
                "boundaries",
                "none: a located report (Open311 lat/long, a canonical location) that names "
                "no area is placed at city level, in no district, and its incidents are the "
                "city's; add district boundaries to route them down",
            )
        ]
    covered = {
        area.code
        for code, _ in features
        for area in topology.ancestors(code)
        if area.level == AreaLevel.district
    }
    # Never all of them: a boundary belongs to a district or an area below one (a
    # polygon for the city is refused, and every parent is exactly one level up).
    missing = [d for d in districts if d.code not in covered]
    if not missing:
        return []
    names = ", ".join(f"{d.code} {d.name_en or d.name}" for d in missing[:_NAMED])
    more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
    return [
        (
            "boundaries",
            f"no boundary covers {len(missing)} of {len(districts)} districts ({names}{more}): "
            "a located report there that names no area is dead-lettered outside_jurisdiction",
        )
    ]
