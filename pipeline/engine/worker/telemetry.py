"""The worker's own telemetry besides Faust's: metric labels, gauges and rate-limited logs."""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict

import orjson

from pipeline.engine.emit import Emit
from pipeline.engine.stages import LifecycleStage
from pipeline.ingest.normalize import Unmapped
from pipeline.metrics import Metrics
from pipeline.models import AreaLevel, RejectReason, Severity
from pipeline.topology import Topology

__all__ = [
    "DEAD_LETTER_STAGES",
    "LateReadingsLog",
    "OpenIncidentsGauge",
    "UnmappedAttributes",
    "age",
    "count_emit",
    "count_sla_breach",
    "dead_letter_stage",
    "missed_level",
    "preset_children",
]

#: The levels that own incidents, lowest first (escalation climbs them one at a time).
OWNER_LEVELS = (AreaLevel.street, AreaLevel.district, AreaLevel.city)
#: Every stage that dead-letters records: the `stage` label of `cityops_dead_letters_total`
#: and the `stage` field of the dead letter itself (raw input, internal topics, updates).
DEAD_LETTER_STAGES = ("normalize", "analyze", "lifecycle")


def preset_children(metrics: Metrics, topology: Topology) -> None:
    """Create the bounded label sets at zero, so "none yet" reads as 0, not as no data."""
    backend = str(topology.sinks.store)
    for counter in (metrics.store_failures, metrics.store_retries):
        counter.labels(backend)
    top = OWNER_LEVELS.index(AreaLevel(topology.escalation.top_level))
    for severity in Severity:
        for level in OWNER_LEVELS[:top]:  # the top level never escalates, so never misses
            metrics.sla_breaches.labels(str(severity), str(level))


def count_emit(metrics: Metrics, emit: Emit, stage: str) -> None:
    """Count one output in the metric its kind belongs to (`stage`: the consumer's)."""
    if emit.kind == "deadletter":
        letter_stage = dead_letter_stage(emit.value, stage)
        metrics.child(metrics.dead_letters, letter_stage, emit.reason or "unknown").inc()
        if emit.reason == RejectReason.duplicate:
            metrics.duplicates.inc()
    elif emit.kind in ("reading", "report"):
        metrics.child(metrics.normalized, emit.kind).inc(emit.count)
    elif emit.kind == "incident" and emit.topic.endswith("incidents.city"):
        severity, level, district = _incident_labels(emit.value)
        metrics.incident_events.labels(emit.reason or "", severity, level, district).inc()


def dead_letter_stage(value: bytes, default: str) -> str:
    """The `stage` a dead letter names itself, so the metric and the dead-letter topic
    agree on who refused a record (`default` when the letter names none)."""
    try:
        stage = orjson.loads(value).get("stage")
    except (orjson.JSONDecodeError, AttributeError):
        return default
    return stage if isinstance(stage, str) and stage else default


def _incident_labels(value: bytes) -> tuple[str, str, str]:
    data = orjson.loads(value)
    return (
        str(data.get("severity")),
        str(data.get("owner_level")),
        str((data.get("areas") or {}).get("district") or "none"),
    )


def count_sla_breach(metrics: Metrics, emit: Emit, topology: Topology) -> None:
    """Count an SLA escalation under the level that missed the deadline.

    Why not the incident's `owner_level`: an escalated incident already names its new
    owner; the level that let the deadline pass is the one below it, and that is whom
    the SLA panel and alerts point at (the level reached is `cityops_incident_events_total
    {action="escalate"}`'s `level`)."""
    data = orjson.loads(emit.value)
    metrics.sla_breaches.labels(str(data.get("severity")), missed_level(data, topology)).inc()


def missed_level(incident: dict[str, object], topology: Topology) -> str:
    """The level an escalated incident came from: the one of its areas whose nearest
    owning ancestor is the incident's new owner ("unknown" when none is)."""
    areas = incident.get("areas")
    owner = incident.get("owner_area")
    if not isinstance(areas, dict):
        return "unknown"
    for level in OWNER_LEVELS[:-1]:
        code = areas.get(str(level))
        if not isinstance(code, str) or not topology.has_area(code):
            continue
        above = (a for a in topology.ancestors(code)[1:] if a.level in OWNER_LEVELS)
        parent = next(above, None)
        if parent is not None and parent.code == owner:
            return str(level)
    return "unknown"


class LateReadingsLog:
    """Warns about readings dropped as late, at most once per `every` seconds.

    Why a log line as well as the counter: a late drop changes what the store holds, and
    whoever reads a worker's log after a surprise should find it there."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.log = logging.getLogger("pipeline.aggregates.windows")
        self._pending = 0
        self._at = -every

    def add(self, count: int) -> None:
        self._pending += count
        now = time.monotonic()
        if now - self._at >= self.every:
            self.log.warning(
                "dropped %d readings later than the allowed lateness (their windows were"
                " closed already)",
                self._pending,
            )
            self._pending = 0
            self._at = now


class UnmappedAttributes:
    """Counts source attributes that map to no catalogue metric, and logs each (sensor,
    attribute) pair once.

    Why: such an attribute is dropped while its neighbours go through (an NGSI entity's
    ``airQualityIndex`` when the catalogue has no AQI), so no dead letter says so; a
    misspelt or renamed catalogue metric would otherwise lose its data without a trace.
    Bounded: the `attribute` label takes at most `max_labels` distinct names (then
    "other"; a source chooses them), and the log remembers the last `max_logged` pairs
    (a pair forgotten and met again is logged again)."""

    def __init__(
        self, metrics: Metrics, *, max_labels: int = 100, max_logged: int = 10_000
    ) -> None:
        self.metrics = metrics
        self.max_labels = max_labels
        self.max_logged = max_logged
        self.log = logging.getLogger("pipeline.ingest.normalize")
        self._labels: set[str] = set()
        self._logged: OrderedDict[tuple[str, str], None] = OrderedDict()

    def count(self, unmapped: Counter[Unmapped]) -> None:
        for item, seen in unmapped.items():
            label = self._label(item.attribute)
            self.metrics.child(self.metrics.unmapped_attributes, item.format, label).inc(seen)
            pair = (item.sensor, item.attribute)
            if pair in self._logged:
                self._logged.move_to_end(pair)
                continue
            self._logged[pair] = None
            if len(self._logged) > self.max_logged:
                self._logged.popitem(last=False)
            maps_to = "" if item.metric == item.attribute else f" (catalogue name {item.metric!r})"
            self.log.warning(
                "sensor %s: %s attribute %r%s maps to no catalogue metric; dropped (its"
                " neighbours go through; counted in cityops_unmapped_attributes_total)",
                item.sensor[:200],
                item.format,
                item.attribute[:200],
                maps_to[:220],
                extra={"sensor_id": item.sensor[:200], "attribute": item.attribute[:200]},
            )

    def _label(self, attribute: str) -> str:
        name = attribute[:64]
        if name in self._labels:
            return name
        if len(self._labels) < self.max_labels:
            self._labels.add(name)
            return name
        return "other"


class OpenIncidentsGauge:
    """Recounts open incidents by district and severity, at most once per `every` seconds
    (the count walks every local incident, so not after every batch)."""

    def __init__(self, metrics: Metrics, lifecycle: LifecycleStage, every: float = 1.0) -> None:
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.every = every
        self._at = -every

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._at < self.every:
            return
        self._at = now
        counts: Counter[tuple[str, str]] = Counter(
            (incident.areas.district or "none", str(incident.severity))
            for incident in self.lifecycle.open_incidents()
        )
        gauge = self.metrics.open_incidents
        gauge.clear()
        for (district, severity), count in counts.items():
            gauge.labels(district, severity).set(count)


def age(timestamp_ms: int | None, now: float) -> float:
    """Seconds from a Kafka record's timestamp (milliseconds) to `now` (seconds)."""
    if not timestamp_ms:
        return 0.0
    return max(0.0, now - timestamp_ms / 1000)
