"""The whole topology: every section validated together, and the lookups built from it.

Why: every other module trusts a :class:`Topology`, so it is frozen and checked once at
construction (each section by its own model, then :func:`cross_check`); derived lookups
(areas and sensors by id, ancestors, boundaries, the topic plan) are built here once so
callers never walk the raw sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.models import AreaLevel, Severity
from pipeline.topology.aggregation import Aggregation
from pipeline.topology.areas import Area
from pipeline.topology.base import LEVEL_DEPTH, Frozen, MetricName, Text
from pipeline.topology.boundaries import BoundaryFeatures, as_path_list, load_boundaries
from pipeline.topology.catalogue import Metric
from pipeline.topology.checks import cross_check
from pipeline.topology.detection import Detection
from pipeline.topology.errors import Issues, TopologyError, path_to_loc, short
from pipeline.topology.event_time import EventTime
from pipeline.topology.grid import Grid, GridIndex
from pipeline.topology.incidents import IncidentsSection, UnitKey, read_unit_keys
from pipeline.topology.reports import ReportCategory
from pipeline.topology.rules import Rule
from pipeline.topology.sensors import Datastream, DatastreamId, Sensor
from pipeline.topology.sinks import Sinks
from pipeline.topology.sla import Escalation, Sla
from pipeline.topology.topics import TOPIC_KINDS, TopicKind, Topics, TopicSpec

__all__ = ["Topology", "check_timezone"]


def check_timezone(value: object) -> str:
    """An IANA time zone name (``Asia/Shanghai``); ``ValueError`` for anything else."""
    if not isinstance(value, str):
        msg = f"must be a time zone name like Asia/Shanghai, got {short(value)}"
        raise ValueError(msg)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        msg = f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
        raise ValueError(msg) from exc
    return value


class Topology(Frozen):
    """One deployment, validated; derived lookups are built once at construction."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")]
    name: Text
    description: str = ""
    timezone: str = "UTC"
    topics: Topics = Topics()
    areas: Annotated[tuple[Area, ...], Field(min_length=1)]
    boundaries: Annotated[tuple[Text, ...], BeforeValidator(as_path_list)] = ()
    grid: Grid | None = None
    sensors: tuple[Sensor, ...] = ()
    datastreams: dict[DatastreamId, Datastream] = Field(default_factory=dict)
    metrics: dict[MetricName, Metric]
    rules: tuple[Rule, ...] = ()
    report_categories: tuple[ReportCategory, ...] = ()
    sla: dict[Severity, Sla]
    escalation: Escalation = Escalation()
    detection: Detection = Detection()
    aggregation: Aggregation = Aggregation()
    event_time: EventTime = EventTime()
    sinks: Sinks = Sinks()
    incidents: IncidentsSection = IncidentsSection()

    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    _areas: dict[str, Area] = PrivateAttr(default_factory=dict)
    _sensors: dict[str, Sensor] = PrivateAttr(default_factory=dict)
    _features: BoundaryFeatures | None = PrivateAttr(default=None)
    _grid_index: GridIndex | None = PrivateAttr(default=None)
    _index: Any = PrivateAttr(default=None)
    _unit_keys: dict[str, UnitKey] | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> Topology:
        if isinstance(info.context, dict) and info.context.get("cross_checked"):
            return self  # parse_topology ran the same checks on these very sections
        issues = cross_check({name: getattr(self, name) for name in type(self).model_fields})
        if issues:
            raise Issues([(path_to_loc(p), m) for p, m in issues])
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Index areas and sensors once; base_dir comes from the validation context."""
        self._areas = {a.code: a for a in self.areas}
        self._sensors = {s.id: s for s in self.sensors}
        if isinstance(context, dict) and isinstance(context.get("base_dir"), Path):
            self._base_dir = context["base_dir"]

    # ---- derived lookups

    @property
    def base_dir(self) -> Path:
        """Directory the topology was loaded from (relative paths resolve against it)."""
        return self._base_dir

    @property
    def detection_lateness(self) -> timedelta:
        """The lateness rule evaluation allows (detection's, else aggregation's)."""
        lateness = self.detection.allowed_lateness
        return self.aggregation.allowed_lateness if lateness is None else lateness

    @property
    def city(self) -> Area:
        """The single city-level area."""
        return next(a for a in self.areas if a.level == AreaLevel.city)

    def area(self, code: str) -> Area:
        """The area with ``code``; ``KeyError`` when unknown."""
        try:
            return self._areas[code]
        except KeyError:
            msg = f"unknown area {code!r}"
            raise KeyError(msg) from None

    def has_area(self, code: str) -> bool:
        """Whether ``code`` is a known area."""
        return code in self._areas

    def areas_at(self, level: AreaLevel | str) -> tuple[Area, ...]:
        """Every area of one level, in file order."""
        return tuple(a for a in self.areas if a.level == level)

    def children(self, code: str) -> tuple[Area, ...]:
        """Direct children of an area."""
        return tuple(a for a in self.areas if a.parent == code)

    def sensor(self, sensor_id: str) -> Sensor | None:
        """The registered sensor, or None."""
        return self._sensors.get(sensor_id)

    @property
    def sensor_index(self) -> Mapping[str, Sensor]:
        """Sensor id -> the registered sensor. For a loop over many readings: take it
        once (each read of a private attribute goes through pydantic's `__getattr__`, which
        costs more than the lookup itself)."""
        return self._sensors

    def ancestors(self, code: str) -> list[Area]:
        """The area itself first, then its parent, ... up to the city."""
        chain = [self.area(code)]
        while chain[-1].parent is not None:
            chain.append(self.area(chain[-1].parent))
        return chain

    def admin_codes(self, code: str) -> dict[AreaLevel, str]:
        """``{level: code}`` for the area's own level and every level above it."""
        return {a.level: a.code for a in self.ancestors(code)}

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with ``rule_id``, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def report_category(self, category_id: str) -> ReportCategory | None:
        """The report category with ``category_id``, or None."""
        return next((c for c in self.report_categories if c.id == category_id), None)

    # ---- boundaries

    def boundary_features(self) -> BoundaryFeatures:
        """``(area_code, shapely geometry)`` for every boundary (districts and lower).

        Loaded from the ``boundaries`` GeoJSON files on first use and cached; empty when
        the topology has none.
        """
        if self._features is None:
            features, errors = load_boundaries(self.boundaries, self._base_dir, self._areas)
            if errors:
                raise TopologyError(errors)
            self._features = features
        return self._features

    def grid_index(self) -> GridIndex | None:
        """Cell -> admin codes over the boundaries, built on first use (None: no grid).

        Why once: filling every boundary with the grid's cells takes about a second for a
        city of 100,000 cells; afterwards placing a point is one H3 call and a dict access.
        """
        if self.grid is None:
            return None
        if self._grid_index is None:
            self._grid_index = GridIndex(
                self.grid.resolution,
                self.boundary_features(),
                self.admin_codes,
                lambda code: LEVEL_DEPTH[self._areas[code].level],
            )
        return self._grid_index

    def areas_containing(self, lat: float, lon: float) -> list[str]:
        """Codes of the boundaries that contain the point, lowest level first."""
        from shapely import Point, STRtree

        features = self.boundary_features()
        if self._index is None:
            self._index = STRtree([geom for _, geom in features])
        point = Point(lon, lat)
        hits = [features[int(i)][0] for i in self._index.query(point, predicate="intersects")]
        return sorted(set(hits), key=lambda c: (-LEVEL_DEPTH[self._areas[c].level], c))

    # ---- handling units

    def unit_keys(self) -> dict[str, UnitKey]:
        """The handling units of ``incidents.unit_keys`` by id (read once; empty without)."""
        if self._unit_keys is None:
            rel = self.incidents.unit_keys
            keys, errors = ({}, []) if rel is None else read_unit_keys(rel, self._base_dir)
            if errors:
                raise TopologyError(errors)
            self._unit_keys = keys
        return self._unit_keys

    # ---- topics

    def topic_plan(self) -> list[TopicSpec]:
        """Every topic this deployment needs, including one per district and per street."""
        plan = [
            self.topics.spec(cast(TopicKind, kind))
            for kind in TOPIC_KINDS
            if kind not in ("incidents_district", "incidents_street")
        ]
        plan += [self.topics.spec("incidents_district", a.code) for a in self.areas_at("district")]
        plan += [self.topics.spec("incidents_street", a.code) for a in self.areas_at("street")]
        return plan
