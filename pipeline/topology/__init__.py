"""A deployment's topology: YAML -> a validated, frozen :class:`Topology`.

Why: one file describes one city (areas, sensors, metrics, rules, report categories,
SLAs, topics, sinks). Every other module trusts it, so a bad topology is refused at load
with *every* error listed by path (``rules[3].levels[1].threshold: must be greater than
115 (the yellow level)``), never a stack trace. Nothing in a topology is evaluated as code;
credentials never live in it (only the names of environment variables that hold them).

Validation runs in two passes: each top-level section is validated on its own (so one bad
section does not hide the errors of another), then cross-references between the valid
sections are checked (parents, sensors' areas and metrics, rule metrics, SLA coverage).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from pipeline.ingest.units import UnitError, canonical_unit_name, convert, is_known, same_dimension
from pipeline.models import AreaLevel, Severity
from pipeline.topology.durations import Duration, NonNegativeDuration, RetentionPeriod

__all__ = [
    "TOPIC_KINDS",
    "Aggregation",
    "Area",
    "AreaScope",
    "Band",
    "Detection",
    "ChdbSink",
    "ClickHouseSink",
    "ClusterRule",
    "Datastream",
    "Escalation",
    "Hold",
    "Level",
    "Metric",
    "ReportCategory",
    "Retention",
    "Rule",
    "Sensor",
    "Sinks",
    "Sla",
    "TopicKind",
    "TopicSpec",
    "Topics",
    "Topology",
    "TopologyError",
    "load_topology",
    "parse_topology",
]

ErrorList = list[tuple[str, str]]
_Loc = tuple[str | int, ...]

SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)
LEVEL_ORDER: tuple[AreaLevel, ...] = tuple(AreaLevel)
_SEV_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}
_LEVEL_DEPTH = {lv: i for i, lv in enumerate(LEVEL_ORDER)}


class TopologyError(ValueError):
    """A topology was refused; ``errors`` lists every problem as ``(path, message)``."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: ErrorList = [(str(p), str(m)) for p, m in errors] or [("", "invalid")]
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in self.errors))


class _Issues(ValueError):
    """Raised inside validators to report several errors below the validated node."""

    def __init__(self, issues: Sequence[tuple[_Loc, str]]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(m for _, m in self.issues))


def _raise_issues(issues: Sequence[tuple[_Loc, str]]) -> None:
    if issues:
        raise _Issues(issues)


# --------------------------------------------------------------------------- field types


def _code(value: object) -> object:
    """YAML reads unquoted codes (310101) as ints: accept them as strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Code = Annotated[str, BeforeValidator(_code), Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
SensorId = Annotated[
    str, BeforeValidator(_code), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- topics

TopicKind = Literal[
    "raw_sensors",
    "raw_reports",
    "readings",
    "reports",
    "deadletter",
    "incidents_city",
    "incidents_district",
    "incidents_street",
    "incident_updates",
    "incident_events",
    "audit",
]
TOPIC_KINDS: tuple[str, ...] = get_args(TopicKind)
_TOPIC_SUFFIX: dict[str, str] = {
    "raw_sensors": "sensors.raw",
    "raw_reports": "reports.raw",
    "readings": "readings",
    "reports": "reports",
    "deadletter": "deadletter",
    "incidents_city": "incidents.city",
    "incidents_district": "incidents.district.",
    "incidents_street": "incidents.street.",
    "incident_updates": "incidents.updates",
    "incident_events": "incidents.events",
    "audit": "incidents.audit",
}
_TOPIC_RETENTION: dict[str, str] = {
    "raw_sensors": "raw",
    "raw_reports": "raw",
    "readings": "readings",
    "reports": "reports",
    "deadletter": "deadletter",
    "incidents_city": "incidents",
    "incidents_district": "incidents",
    "incidents_street": "incidents",
    "incident_updates": "incidents",
    "incident_events": "incidents",
    "audit": "audit",
}
# Incident topics carry the latest snapshot per incident id: state, so compacted.
_COMPACTED = frozenset({"incidents_city", "incidents_district", "incidents_street"})
_MAX_TOPIC_NAME = 249


class Retention(_Frozen):
    """How long each family of topics keeps records (``-1`` / ``forever``: keep forever)."""

    raw: RetentionPeriod = Field(default="3d", validate_default=True)
    readings: RetentionPeriod = Field(default="7d", validate_default=True)
    reports: RetentionPeriod = Field(default="30d", validate_default=True)
    incidents: RetentionPeriod = Field(default="365d", validate_default=True)
    deadletter: RetentionPeriod = Field(default="30d", validate_default=True)
    audit: RetentionPeriod = None


@dataclass(frozen=True)
class TopicSpec:
    """One topic a deployment needs: what topic creation is told."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


class Topics(_Frozen):
    """Topic naming and sizing; :meth:`name` is the only place topic names are built."""

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{0,100}$")] = "cityops."
    partitions: Annotated[int, Field(ge=1, le=1000)] = 6
    area_partitions: Annotated[int, Field(ge=1, le=1000)] = 1
    replication: Annotated[int, Field(ge=1, le=16)] = 1
    retention: Retention = Retention()

    def name(self, kind: TopicKind, area: str | None = None) -> str:
        """The topic for ``kind``; district and street incident topics need the area code."""
        suffix = _TOPIC_SUFFIX.get(kind)
        if suffix is None:
            msg = f"unknown topic kind {kind!r} (known: {', '.join(TOPIC_KINDS)})"
            raise ValueError(msg)
        if kind in ("incidents_district", "incidents_street"):
            if not area or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", area):
                msg = f"topic kind {kind} needs an area code, got {area!r}"
                raise ValueError(msg)
            return f"{self.prefix}{suffix}{area}"
        if area is not None:
            msg = f"topic kind {kind} takes no area"
            raise ValueError(msg)
        return f"{self.prefix}{suffix}"

    def spec(self, kind: TopicKind, area: str | None = None) -> TopicSpec:
        """Name, partitions, replication and config of one topic."""
        retention = getattr(self.retention, _TOPIC_RETENTION[kind])
        ms = "-1" if retention is None else str(round(retention.total_seconds() * 1000))
        if kind in _COMPACTED:
            policy = "compact" if retention is None else "compact,delete"
        else:
            policy = "delete"
        per_area = kind in ("incidents_district", "incidents_street")
        return TopicSpec(
            name=self.name(kind, area),
            partitions=self.area_partitions if per_area else self.partitions,
            replication=self.replication,
            config={"cleanup.policy": policy, "retention.ms": ms},
        )


# --------------------------------------------------------------------------- areas, sensors


class Area(_Frozen):
    """One administrative area (city, district, street/town, grid, community)."""

    code: Code
    level: AreaLevel
    name: Text
    name_en: Text | None = None
    parent: Code | None = None


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Sensor:
    """A registered sensor: what it measures, where it is, and its lowest known area.

    A slotted dataclass, not a model: a registry holds 100,000s of these, and a pydantic
    model instance costs ~1 KB more (its `__dict__` and field-set bookkeeping).
    """

    id: SensorId
    metrics: Annotated[tuple[MetricName, ...], Field(min_length=1, max_length=64)]
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    area: Code
    kind: Text | None = None

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        issues = [((i,), f"{m!r} is listed twice") for i, m in enumerate(value) if m in value[:i]]
        _raise_issues(issues)
        return value


class Datastream(_Frozen):
    """An OGC SensorThings Datastream: which sensor and metric its observations are."""

    sensor: SensorId
    metric: MetricName


DatastreamId = Annotated[str, BeforeValidator(_code), Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class Metric(_Frozen):
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
        issues: list[tuple[_Loc, str]] = []
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
        _raise_issues(issues)
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


# --------------------------------------------------------------------------- rules


class Band(_Frozen):
    """A closed interval ``[low, high]``."""

    low: Finite
    high: Finite


class Level(_Frozen):
    """One severity step of a rule: ``threshold`` for above/below, ``low``/``high`` for outside."""

    severity: Severity
    threshold: Finite | None = None
    low: Finite | None = None
    high: Finite | None = None


class AreaScope(_Frozen):
    """Evaluate a statistic of all readings of an area over a tumbling window."""

    area: AreaLevel
    window: Duration
    statistic: Literal["mean", "min", "max", "sum", "count"] = "mean"


class Hold(_Frozen):
    """How long a condition must hold: ``count`` consecutive readings or a ``duration``."""

    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    duration: Duration | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Hold:
        if (self.count is None) == (self.duration is None):
            raise _Issues([((), "give exactly one of count or duration")])
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


class Rule(_Frozen):
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
        _raise_issues(_check_levels(self))
        return self


def _check_levels(rule: Rule) -> list[tuple[_Loc, str]]:
    """Shape of each level, severity order, monotonic thresholds, clear on the safe side."""
    issues: list[tuple[_Loc, str]] = []
    outside = rule.condition == "outside"
    shaped: list[tuple[int, Level]] = []
    for i, level in enumerate(rule.levels):
        here: list[tuple[_Loc, str]] = []
        if outside:
            if level.threshold is not None:
                here.append((("levels", i, "threshold"), "use low and high for 'outside'"))
            for side in ("low", "high"):
                if getattr(level, side) is None:
                    here.append((("levels", i, side), "is required for condition 'outside'"))
            if level.low is not None and level.high is not None and not level.low < level.high:
                here.append((("levels", i, "high"), f"must be greater than low ({level.low:g})"))
        else:
            if level.threshold is None:
                here.append(
                    (("levels", i, "threshold"), f"is required for condition {rule.condition!r}")
                )
            for side in ("low", "high"):
                if getattr(level, side) is not None:
                    here.append((("levels", i, side), "only for condition 'outside'"))
        issues += here
        if not here:
            shaped.append((i, level))
    seen: dict[Severity, int] = {}
    for i, level in enumerate(rule.levels):
        if level.severity in seen:
            issues.append(
                (
                    ("levels", i, "severity"),
                    f"{level.severity} is already levels[{seen[level.severity]}] "
                    "(each severity at most once per rule)",
                )
            )
        elif seen and _SEV_RANK[level.severity] < max(_SEV_RANK[s] for s in seen):
            issues.append(
                (
                    ("levels", i, "severity"),
                    f"{level.severity} is listed after a higher severity; list levels from blue up",
                )
            )
        seen.setdefault(level.severity, i)
    for (_, prev), (i, level) in zip(shaped, shaped[1:], strict=False):
        name = prev.severity.value
        if rule.condition == "above":
            assert level.threshold is not None and prev.threshold is not None  # noqa: S101
            if not level.threshold > prev.threshold:
                issues.append(
                    (
                        ("levels", i, "threshold"),
                        f"must be greater than {prev.threshold:g} (the {name} level)",
                    )
                )
        elif rule.condition == "below":
            assert level.threshold is not None and prev.threshold is not None  # noqa: S101
            if not level.threshold < prev.threshold:
                issues.append(
                    (
                        ("levels", i, "threshold"),
                        f"must be less than {prev.threshold:g} (the {name} level)",
                    )
                )
        else:
            assert level.low is not None and prev.low is not None  # noqa: S101
            assert level.high is not None and prev.high is not None  # noqa: S101
            if level.low > prev.low:
                issues.append(
                    (
                        ("levels", i, "low"),
                        f"must be at most {prev.low:g} (the {name} level): "
                        "the band widens with severity",
                    )
                )
            if level.high < prev.high:
                issues.append(
                    (
                        ("levels", i, "high"),
                        f"must be at least {prev.high:g} (the {name} level): "
                        "the band widens with severity",
                    )
                )
            if level.low == prev.low and level.high == prev.high:
                issues.append((("levels", i), f"must be wider than the {name} band"))
    issues += _check_clear(rule, shaped[0][1] if shaped and shaped[0][0] == 0 else None)
    return issues


def _check_clear(rule: Rule, lowest: Level | None) -> list[tuple[_Loc, str]]:
    clear = rule.clear
    if clear is None:
        return []
    where: _Loc = ("clear",)
    if rule.condition == "outside":
        if not isinstance(clear, Band):
            return [(where, "must be a band {low, high} for condition 'outside'")]
        if not clear.low < clear.high:
            return [(("clear", "high"), f"must be greater than low ({clear.low:g})")]
        if lowest is None or lowest.low is None or lowest.high is None:
            return []
        name = lowest.severity.value
        issues: list[tuple[_Loc, str]] = []
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


# --------------------------------------------------------------------------- reports, SLA, ...


class ClusterRule(_Frozen):
    """``count`` reports of a category within ``radius_m`` and ``window`` open one incident."""

    count: Annotated[int, Field(ge=2, le=10_000)]
    radius_m: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    window: Duration


class ReportCategory(_Frozen):
    """A citizen report category: urgent ones open an incident at once, others by cluster."""

    id: Ident
    name: Text
    name_en: Text | None = None
    urgent: bool = False
    severity: Severity
    cluster: ClusterRule | None = None

    @model_validator(mode="after")
    def _cluster_or_urgent(self) -> ReportCategory:
        if self.urgent and self.cluster is not None:
            raise _Issues(
                [
                    (
                        ("cluster",),
                        "an urgent category opens an incident at once; "
                        "remove cluster or set urgent: false",
                    )
                ]
            )
        return self


class Sla(_Frozen):
    """Deadlines from opening: acknowledge within ``ack``, resolve within ``resolve``."""

    ack: Duration
    resolve: Duration

    @model_validator(mode="after")
    def _ack_first(self) -> Sla:
        if self.ack > self.resolve:
            raise _Issues([(("ack",), "must not be longer than resolve")])
        return self


class Escalation(_Frozen):
    """Overdue incidents move one level up, at most up to ``top_level``."""

    enabled: bool = True
    top_level: AreaLevel = AreaLevel.city


class Detection(_Frozen):
    """Rule evaluation over each subject's readings, in event time.

    ``allowed_lateness``: how long a reading waits for older, out-of-order readings of the
    same subject before it is evaluated (and an incident can open). Unset, it is the
    aggregation's lateness. Zero evaluates every in-order reading at once (fastest
    incidents); a sensor's readings arrive in order on their keyed partition, so only
    genuinely out-of-order ones are then dropped from detection (still aggregated).
    """

    allowed_lateness: NonNegativeDuration | None = None


class Aggregation(_Frozen):
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
        issues: list[tuple[_Loc, str]] = []
        for i, level in enumerate(value):
            if level not in (AreaLevel.street, AreaLevel.district, AreaLevel.city):
                issues.append(((i,), "aggregates exist for street, district and city only"))
            elif level in value[:i]:
                issues.append(((i,), f"{level} is listed twice"))
        _raise_issues(issues)
        return value


class ChdbSink(_Frozen):
    """The embedded ClickHouse engine: data directory and database."""

    path: Text = "data/chdb"
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "cityops"


_LITERAL_CREDENTIALS = {
    "url": "url_env",
    "user": "user_env",
    "username": "user_env",
    "password": "password_env",
    "passwd": "password_env",
    "secret": "password_env",
    "token": "password_env",
}


class ClickHouseSink(_Frozen):
    """A ClickHouse server; credentials only as *names* of environment variables."""

    url_env: EnvName = "CITYOPS_CLICKHOUSE_URL"
    user_env: EnvName = "CITYOPS_CLICKHOUSE_USER"
    password_env: EnvName = "CITYOPS_CLICKHOUSE_PASSWORD"  # noqa: S105  # a variable name
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "cityops"

    @model_validator(mode="before")
    @classmethod
    def _no_literal_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            issues: list[tuple[_Loc, str]] = [
                (
                    (key,),
                    f"credentials never go into a topology; name the environment "
                    f"variable that holds it with {_LITERAL_CREDENTIALS[key]}",
                )
                for key in data
                if isinstance(key, str) and key.lower() in _LITERAL_CREDENTIALS
            ]
            _raise_issues(issues)
        return data


class Sinks(_Frozen):
    """Where aggregates go: the embedded engine (default) or a server."""

    store: Literal["chdb", "clickhouse"] = "chdb"
    chdb: ChdbSink = ChdbSink()
    clickhouse: ClickHouseSink = ClickHouseSink()


# --------------------------------------------------------------------------- the topology


def _boundary_paths(value: object) -> object:
    return (value,) if isinstance(value, str) else value


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        msg = f"must be a time zone name like Asia/Shanghai, got {_short(value)}"
        raise ValueError(msg)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        msg = f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
        raise ValueError(msg) from exc
    return value


class Topology(_Frozen):
    """One deployment, validated; derived lookups are built once at construction."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")]
    name: Text
    description: str = ""
    timezone: str = "UTC"
    topics: Topics = Topics()
    areas: Annotated[tuple[Area, ...], Field(min_length=1)]
    boundaries: Annotated[tuple[Text, ...], BeforeValidator(_boundary_paths)] = ()
    sensors: tuple[Sensor, ...] = ()
    datastreams: dict[DatastreamId, Datastream] = Field(default_factory=dict)
    metrics: dict[MetricName, Metric]
    rules: tuple[Rule, ...] = ()
    report_categories: tuple[ReportCategory, ...] = ()
    sla: dict[Severity, Sla]
    escalation: Escalation = Escalation()
    detection: Detection = Detection()
    aggregation: Aggregation = Aggregation()
    sinks: Sinks = Sinks()

    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    _areas: dict[str, Area] = PrivateAttr(default_factory=dict)
    _sensors: dict[str, Sensor] = PrivateAttr(default_factory=dict)
    _features: list[tuple[str, Any]] | None = PrivateAttr(default=None)
    _index: Any = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _timezone(value)

    @model_validator(mode="after")
    def _cross_references(self) -> Topology:
        issues = cross_check({name: getattr(self, name) for name in type(self).model_fields})
        if issues:
            raise _Issues([(_path_to_loc(p), m) for p, m in issues])
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

    def boundary_features(self) -> list[tuple[str, Any]]:
        """``(area_code, shapely geometry)`` for every boundary (districts and lower).

        Loaded from the ``boundaries`` GeoJSON files on first use and cached; empty when
        the topology has none.
        """
        if self._features is None:
            features, errors = _load_boundaries(self.boundaries, self._base_dir, self._areas)
            if errors:
                raise TopologyError(errors)
            self._features = features
        return self._features

    def areas_containing(self, lat: float, lon: float) -> list[str]:
        """Codes of the boundaries that contain the point, lowest level first."""
        from shapely import Point, STRtree

        features = self.boundary_features()
        if self._index is None:
            self._index = STRtree([geom for _, geom in features])
        point = Point(lon, lat)
        hits = [features[int(i)][0] for i in self._index.query(point, predicate="intersects")]
        return sorted(set(hits), key=lambda c: (-_LEVEL_DEPTH[self._areas[c].level], c))

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


# --------------------------------------------------------------------------- cross checks


def cross_check(
    sections: Mapping[str, Any], known: Mapping[str, set[str]] | None = None
) -> ErrorList:
    """References between sections.

    Sections missing from ``sections`` (they failed validation) are skipped; references
    into them are still checked against ``known`` names (``areas``, ``metrics``,
    ``sensors``: the identifiers the raw section lists) when given.
    """
    errors: ErrorList = []
    fallback = known or {}
    partial: set[str] = sections.get("_partial", set())
    areas: Sequence[Area | None] | None = sections.get("areas")
    metrics: dict[str, Metric] | None = sections.get("metrics")
    metric_names = (
        set(metrics)
        if metrics is not None and "metrics" not in partial
        else fallback.get("metrics")
    )
    by_code: dict[str, Area] = {}
    if areas is not None:
        errors += _check_areas(areas)
        for area in areas:
            if area is not None:
                by_code.setdefault(area.code, area)
    area_codes = set(by_code) if areas is not None and None not in areas else fallback.get("areas")
    sensors: Sequence[Sensor | None] | None = sections.get("sensors")
    by_id: dict[str, Sensor] = {}
    if sensors is not None:
        for i, sensor in enumerate(sensors):
            if sensor is None:
                continue
            if sensor.id in by_id:
                errors.append((f"sensors[{i}].id", f"duplicate sensor id {sensor.id!r}"))
            by_id.setdefault(sensor.id, sensor)
            if area_codes is not None and sensor.area not in area_codes:
                errors.append((f"sensors[{i}].area", f"unknown area {sensor.area!r}"))
            if metric_names is not None:
                errors += [
                    (f"sensors[{i}].metrics[{j}]", f"unknown metric {m!r} (not in metrics)")
                    for j, m in enumerate(sensor.metrics)
                    if m not in metric_names
                ]
    sensor_ids = (
        set(by_id) if sensors is not None and None not in sensors else fallback.get("sensors")
    )
    datastreams: dict[str, Datastream] | None = sections.get("datastreams")
    for key, stream in (datastreams or {}).items():
        where = f"datastreams{_key(key)}"
        registered = by_id.get(stream.sensor)
        if sensor_ids is not None and stream.sensor not in sensor_ids:
            errors.append((f"{where}.sensor", f"unknown sensor {stream.sensor!r}"))
        if metric_names is not None and stream.metric not in metric_names:
            errors.append((f"{where}.metric", f"unknown metric {stream.metric!r}"))
        elif registered is not None and stream.metric not in registered.metrics:
            errors.append(
                (f"{where}.metric", f"sensor {stream.sensor} does not measure {stream.metric}")
            )
    errors += _check_rules(sections.get("rules"), metrics, metric_names, areas)
    categories: Sequence[ReportCategory | None] | None = sections.get("report_categories")
    seen: set[str] = set()
    for i, category in enumerate(categories or ()):
        if category is None:
            continue
        if category.id in seen:
            errors.append((f"report_categories[{i}].id", f"duplicate category id {category.id!r}"))
        seen.add(category.id)
    sla: dict[Severity, Sla] | None = sections.get("sla")
    sla_keys = {str(s) for s in sla} if sla is not None else fallback.get("sla")
    if sla_keys is not None:
        errors += [
            (f"sla.{s.value}", "is required: every severity needs an SLA")
            for s in SEVERITY_ORDER
            if s.value not in sla_keys
        ]
    levels_present = _levels(areas)
    escalation: Escalation | None = sections.get("escalation")
    if escalation is not None and levels_present is not None:
        if escalation.top_level not in levels_present:
            errors.append(("escalation.top_level", f"no area has level {escalation.top_level}"))
    aggregation: Aggregation | None = sections.get("aggregation")
    if aggregation is not None and levels_present is not None:
        errors += [
            (f"aggregation.levels[{i}]", f"no area has level {level}")
            for i, level in enumerate(aggregation.levels)
            if level not in levels_present
        ]
    topics: Topics | None = sections.get("topics")
    if topics is not None and by_code:
        longest = max(len(c) for c in by_code)
        size = len(topics.prefix) + len("incidents.district.") + longest
        if size > _MAX_TOPIC_NAME:
            errors.append(
                (
                    "topics.prefix",
                    f"too long: topic names would reach {size} "
                    f"characters (Kafka allows {_MAX_TOPIC_NAME})",
                )
            )
    return errors


def _levels(areas: Sequence[Area | None] | None) -> set[AreaLevel] | None:
    """Levels present, or None when unknown (areas invalid or partly invalid)."""
    if areas is None or None in areas:
        return None
    return {a.level for a in areas if a is not None}


def _check_areas(areas: Sequence[Area | None]) -> ErrorList:
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
        if area is None:
            continue
        where = f"areas[{i}]"
        if area.level == AreaLevel.city:
            if area.parent is not None:
                errors.append((f"{where}.parent", "a city has no parent"))
            continue
        expected = LEVEL_ORDER[_LEVEL_DEPTH[area.level] - 1]
        if area.parent is None:
            errors.append((f"{where}.parent", f"is required: a {area.level} needs its {expected}"))
            continue
        parent = areas[first[area.parent]] if area.parent in first else None
        if parent is None and None in areas:
            continue  # the parent may be one of the areas that failed validation
        if parent is None:
            errors.append((f"{where}.parent", f"unknown area {area.parent}"))
        elif parent.level != expected:
            errors.append(
                (
                    f"{where}.parent",
                    f"{parent.code} is a {parent.level}; the parent of "
                    f"a {area.level} must be a {expected}",
                )
            )
        elif area.level == AreaLevel.street and not area.code.startswith(parent.code):
            errors.append((f"{where}.code", f"must start with its district's code {parent.code}"))
    return errors


def _check_rules(
    rules: Sequence[Rule | None] | None,
    metrics: dict[str, Metric] | None,
    metric_names: set[str] | None,
    areas: Sequence[Area | None] | None,
) -> ErrorList:
    errors: ErrorList = []
    seen: set[str] = set()
    levels_present = _levels(areas)
    for i, rule in enumerate(rules or ()):
        if rule is None:
            continue
        where = f"rules[{i}]"
        if rule.id in seen:
            errors.append((f"{where}.id", f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        if isinstance(rule.scope, AreaScope) and levels_present is not None:
            if rule.scope.area not in levels_present:
                errors.append((f"{where}.scope.area", f"no area has level {rule.scope.area}"))
        if metric_names is not None and rule.metric not in metric_names:
            known = ", ".join(sorted(metric_names)) or "none"
            errors.append((f"{where}.metric", f"unknown metric {rule.metric!r} (known: {known})"))
            continue
        metric = metrics.get(rule.metric) if metrics is not None else None
        if metric is None:
            continue
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


# --------------------------------------------------------------------------- boundaries


def _load_boundaries(
    paths: Iterable[str], base_dir: Path, areas: Mapping[str, Area]
) -> tuple[list[tuple[str, Any]], ErrorList]:
    """Read GeoJSON FeatureCollections whose features carry ``properties.code``."""
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    features: list[tuple[str, Any]] = []
    errors: ErrorList = []
    seen: dict[str, str] = {}
    for n, rel in enumerate(paths):
        where = f"boundaries[{n}]"
        path = base_dir / rel
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            errors.append((where, f"cannot read {path}: {exc.strerror or exc}"))
            continue
        except ValueError as exc:
            errors.append((where, f"{rel} is not valid JSON: {exc}"))
            continue
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            errors.append((where, f"{rel} must be a GeoJSON FeatureCollection"))
            continue
        raw_features = doc.get("features")
        if not isinstance(raw_features, list):
            errors.append((where, f"{rel}: features must be a list"))
            continue
        for k, feature in enumerate(raw_features):
            at = f"{where} ({rel} features[{k}])"
            props = feature.get("properties") if isinstance(feature, dict) else None
            code = str(props.get("code")) if isinstance(props, dict) else None
            if code is None or code not in areas:
                errors.append((at, f"properties.code {code!r} is not a known area"))
                continue
            if areas[code].level == AreaLevel.city:
                errors.append((at, f"{code} is the city: boundaries are for districts and lower"))
                continue
            if code in seen:
                errors.append((at, f"{code} already has a boundary in {seen[code]}"))
                continue
            try:
                geom = shape(feature.get("geometry"))
            except Exception as exc:  # noqa: BLE001  # shapely raises many types on bad input
                errors.append((at, f"invalid geometry: {exc}"))
                continue
            if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
                errors.append(
                    (at, f"geometry must be a Polygon or MultiPolygon, not {geom.geom_type}")
                )
                continue
            if not geom.is_valid:
                errors.append((at, f"invalid geometry: {explain_validity(geom)}"))
                continue
            seen[code] = rel
            features.append((code, geom))
    return features, errors


# --------------------------------------------------------------------------- loading


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            msg = "found an unhashable key"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark) from exc
        if key in mapping:
            msg = f"duplicate key {key!r}"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no tags that build objects; duplicate keys refused)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = exc.problem or exc.context or "invalid YAML"
        raise TopologyError([(where, f"invalid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise TopologyError([("yaml", f"invalid YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise TopologyError([("yaml", "invalid YAML: nested too deeply")]) from exc


def load_topology(path: str | Path) -> Topology:
    """Read, parse and validate a topology file; ``TopologyError`` lists every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read {file}: {exc.strerror or exc}"
        raise TopologyError([(str(file), msg)]) from exc
    except UnicodeDecodeError as exc:
        msg = f"{file} is not UTF-8 text"
        raise TopologyError([(str(file), msg)]) from exc
    return parse_topology(load_yaml(text), file.resolve().parent)


def parse_topology(data: Any, base_dir: Path) -> Topology:
    """Validate a topology mapping (as YAML gives it); relative paths resolve in ``base_dir``."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise TopologyError([("", f"a topology must be a mapping of sections, not {kind}")])
    errors: ErrorList = []
    raw = dict(data)
    from_file = False
    if isinstance(raw.get("sensors"), dict):
        rows, sensor_errors = _read_sensor_file(raw["sensors"], base_dir)
        errors += sensor_errors
        from_file = True
        if sensor_errors:
            raw.pop("sensors")
        else:
            raw["sensors"] = rows
    fields = Topology.model_fields
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            errors.append((_key(key).lstrip("."), f"unknown section (known: {known})"))
    sections: dict[str, Any] = {}
    for name, info in fields.items():
        if name not in raw:
            if info.is_required():
                errors.append((name, "is required"))
            continue
        adapter = _section_adapter(name)
        try:
            sections[name] = adapter.validate_python(raw[name])
        except ValidationError as exc:
            partial = _partial_section(name, raw[name])
            if partial is not None:
                sections[name] = partial
                sections.setdefault("_partial", set()).add(name)
            section_errors = _convert(exc, (name,))
            if from_file and name == "sensors":
                section_errors = [
                    (p.replace("sensors[", "sensors.file[", 1), m) for p, m in section_errors
                ]
            errors += section_errors
    errors += cross_check(sections, _known_names(raw))
    if "areas" in sections and "boundaries" in sections:
        by_code = {a.code: a for a in sections["areas"]}
        features, boundary_errors = _load_boundaries(sections["boundaries"], base_dir, by_code)
        errors += boundary_errors
    else:
        features = None
    if errors:
        raise TopologyError(_dedupe(errors))
    try:
        # From the validated sections, not `raw`: validating every sensor a second time
        # doubled the load time and the peak memory of a large registry.
        topology = Topology.model_validate(sections, context={"base_dir": base_dir})
    except ValidationError as exc:  # every check above passed: only a bug gets here
        raise TopologyError(_convert(exc, ())) from exc
    topology._features = features
    return topology


_ITEM_TYPES: dict[str, Any] = {
    "areas": Area,
    "sensors": Sensor,
    "rules": Rule,
    "report_categories": ReportCategory,
    "metrics": Metric,
}


def _partial_section(name: str, value: Any) -> Any:
    """The valid items of a list (None where invalid) or mapping section that failed."""
    item = _ITEM_TYPES.get(name)
    if item is None:
        return None

    adapter = TypeAdapter(item)

    def check(entry: Any) -> Any:
        try:
            return adapter.validate_python(entry)
        except ValidationError:
            return None

    if name == "metrics" and isinstance(value, dict):
        valid = {k: check(v) for k, v in value.items() if isinstance(k, str)}
        return {k: v for k, v in valid.items() if v is not None}
    if name != "metrics" and isinstance(value, list):
        return tuple(check(entry) for entry in value)
    return None


def _known_names(raw: Mapping[str, Any]) -> dict[str, set[str]]:
    """Identifiers the raw sections list, for references into a section that failed."""

    def ids(section: str, key: str) -> set[str]:
        items = raw.get(section)
        if not isinstance(items, list):
            return set()
        return {str(_code(i.get(key))) for i in items if isinstance(i, dict) and key in i}

    metrics = raw.get("metrics")
    sla = raw.get("sla")
    return {
        "sla": {str(k) for k in sla} if isinstance(sla, dict) else set(),
        "areas": ids("areas", "code"),
        "sensors": ids("sensors", "id"),
        "metrics": {str(k) for k in metrics} if isinstance(metrics, dict) else set(),
    }


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _section_adapter(name: str) -> TypeAdapter[Any]:
    """A validator for one top-level section, with the field's own constraints."""
    adapter = _ADAPTERS.get(name)
    if adapter is None:
        info = Topology.model_fields[name]
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        if name == "timezone":
            annotation = Annotated[str, BeforeValidator(_timezone)]
        adapter = _ADAPTERS[name] = TypeAdapter(annotation)
    return adapter


_SENSOR_COLUMNS = ("id", "metrics", "lat", "lon", "area", "kind")


def _read_sensor_file(spec: Mapping[Any, Any], base_dir: Path) -> tuple[list[Any], ErrorList]:
    """Rows of a sensor registry file (``{file: sensors/x.csv}``; CSV or JSON list)."""
    extra = [k for k in spec if k != "file"]
    if extra:
        return [], [(f"sensors{_key(k)}", "unknown key (only file)") for k in extra]
    rel = spec.get("file")
    if not isinstance(rel, str) or not rel:
        return [], [("sensors.file", "must be a path to a CSV or JSON registry")]
    path = base_dir / rel
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [("sensors.file", f"cannot read {path}: {exc}")]
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            return [], [("sensors.file", f"{rel} is not valid JSON: {exc}")]
        if not isinstance(rows, list):
            return [], [("sensors.file", f"{rel} must hold a JSON list of sensors")]
        return rows, []
    if path.suffix.lower() != ".csv":
        return [], [("sensors.file", f"{rel}: use a .csv or .json registry")]
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _SENSOR_COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        return [], [("sensors.file", f"{rel} lacks column(s) {', '.join(missing)}")]
    out: list[Any] = []
    split = re.compile(r"[\s;|]+").split
    for row in reader:
        item: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v != ""}
        # A registry repeats a few areas, kinds and metrics for every sensor: share one
        # string each (100,000 sensors: tens of MB saved).
        for column in ("area", "kind"):
            if isinstance(item.get(column), str):
                item[column] = sys.intern(item[column])
        metrics = item.get("metrics")
        if isinstance(metrics, str):
            item["metrics"] = [sys.intern(m) for m in split(metrics) if m]
        out.append(item)
    return out, []


# --------------------------------------------------------------------------- errors by path


def _key(key: object) -> str:
    text = str(key)
    if re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return f".{text}"
    return f"[{json.dumps(text, ensure_ascii=False)}]"


def _loc_to_path(loc: Sequence[str | int]) -> str:
    """``('rules', 3, 'levels', 1, 'threshold')`` -> ``rules[3].levels[1].threshold``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("<") or part == "[key]":
            continue
        else:
            out += _key(part)
    return out.lstrip(".")


def _path_to_loc(path: str) -> _Loc:
    loc: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return tuple(loc)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_MESSAGE_REWRITES: tuple[tuple[str, str], ...] = (
    ("Input should be", "must be"),
    ("String should", "must"),
    ("Tuple should", "must"),
    ("List should", "must"),
    ("Value should", "must"),
)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key (not part of the topology format)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "assertion_error":
        return str(error["msg"]).removeprefix("Assertion failed, ")
    msg = str(error["msg"])
    for old, new in _MESSAGE_REWRITES:
        if msg.startswith(old):
            msg = new + msg[len(old) :]
            break
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in ("literal_error", "enum"):
        msg += f", got {_short(error.get('input'))}"
    if kind == "union_tag_invalid":
        msg = "has the wrong shape"
    return msg


def _convert(exc: ValidationError, prefix: _Loc) -> ErrorList:
    """pydantic's errors -> ``(path, message)``, expanding multi-issue validator errors."""
    out: ErrorList = []
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        if loc and loc[-1] == "[key]":
            out.append((_loc_to_path(loc), f"key {_message(error)}"))
            continue
        ctx = error.get("ctx") or {}
        issue = ctx.get("error")
        if isinstance(issue, _Issues):
            out += [(_loc_to_path((*loc, *sub)), msg) for sub, msg in issue.issues]
        else:
            out.append((_loc_to_path(loc), _message(error)))
    return _dedupe(out)


def _dedupe(errors: Iterable[tuple[str, str]]) -> ErrorList:
    seen: set[tuple[str, str]] = set()
    out: ErrorList = []
    for item in errors:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
