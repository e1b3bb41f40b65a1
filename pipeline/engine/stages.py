"""The pipeline's stages: pure decisions wired to topics, shared by the worker and the dry run.

Why here: the Faust worker (`pipeline/engine/worker/`) and `cityops dry-run` both call these
classes, so the worker and the dry run cannot disagree. A stage takes one input, updates its
keyed state and returns `Emit`s; it never talks to Kafka and never raises for bad input (a
bad record becomes a dead letter).

State lives in a `KeyedStates` cache over any `MutableMapping[str, dict]`: a plain dict in
the dry run, a changelog-backed Faust table in the worker. Keys are the input topic's
message keys, so a state lives in the partition of the records that change it:

- readings are keyed by district code: per-rule detection states (one table entry each,
  see `state_table_key`), per-area windows and district/street aggregates of one district
  stay together in one partition, so several workers in one group produce exactly what
  one worker produces;
- reports are keyed by category (cluster state is per category);
- incident events and incident updates are keyed by incident id (lifecycle state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import ValidationError

from pipeline.aggregates.windows import WindowState
from pipeline.engine.emit import Emit, Headers, SourceRef
from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.normalize import Normalizer
from pipeline.models import (
    AggregateRow,
    AreaLevel,
    CitizenReport,
    DeadLetter,
    Incident,
    IncidentUpdate,
    Reading,
    Rejection,
    RejectReason,
)
from pipeline.rules import clusters
from pipeline.rules import detection as detect
from pipeline.rules.audit import AuditChain, ChainHead
from pipeline.rules.incidents import (
    IncidentEvent,
    Transition,
    apply,
    apply_detection,
    check_sla,
    route,
)
from pipeline.topology import Topology

S = TypeVar("S")


@functools.lru_cache(maxsize=4096)
def _partition_name(topic: str, partition: int) -> str:
    """`topic:partition`, one shared string per partition (every state's offsets use it;
    built per record it was an allocation per state per reading)."""
    return f"{topic}:{partition}"


class KeyedStates(Generic[S]):
    """Decoded states over a backing mapping; `persist()` writes back what changed.

    Why a cache: decoding a state per record costs more than the record's evaluation; the
    worker decodes a key once, mutates the object, and writes it back once per batch.

    Why offsets: a worker killed after its table changelog was flushed but before its
    consumer offsets were committed re-reads records whose effect the table already holds.
    Each key remembers the last offset applied per source topic-partition (a key's records
    always come from one partition), so `already_applied` lets a stage skip such a replay
    and the state changes exactly once per record.
    """

    def __init__(
        self,
        backing: MutableMapping[str, Any],
        load: Callable[[dict[str, Any]], S],
        dump: Callable[[S], dict[str, Any]],
    ) -> None:
        self.backing = backing
        self._load = load
        self._dump = dump
        self._cache: dict[str, S] = {}
        self._offsets: dict[str, dict[str, int]] = {}
        self._dirty: set[str] = set()

    def _decode(self, key: str) -> S | None:
        stored = self.backing.get(key)
        if stored is None:
            return None
        state = self._cache[key] = self._load(stored["state"])
        self._offsets[key] = dict(stored.get("offsets", {}))
        return state

    def get(self, key: str, default: Callable[[], S]) -> S:
        """The state of `key` (decoded once), or a new one; marks it changed."""
        state = self._cache.get(key)
        if state is None:
            state = self._decode(key)
            if state is None:
                state = self._cache[key] = default()
                self._offsets.setdefault(key, {})  # keep what already_applied just recorded
        self._dirty.add(key)
        return state

    def replace(self, key: str, state: S) -> None:
        """Set the state of `key` (a step returned a new object); marks it changed."""
        self._offsets.setdefault(key, {})
        self._cache[key] = state
        self._dirty.add(key)

    def peek(self, key: str) -> S | None:
        """The state of `key` without creating or marking it."""
        state = self._cache.get(key)
        return state if state is not None else self._decode(key)

    def already_applied(self, key: str, source: SourceRef) -> bool:
        """True when `source` is at or before the last offset applied to `key`; else
        records it as applied (call before changing the state)."""
        if source.offset is None or source.partition is None:
            return False
        if key not in self._cache:
            self._decode(key)
        offsets = self._offsets.setdefault(key, {})
        where = _partition_name(source.topic, source.partition)
        last = offsets.get(where)
        if last is not None and source.offset <= last:
            return True
        offsets[where] = source.offset
        return False

    def keys(self) -> list[str]:
        """Every key known locally (backing mapping and cache)."""
        return sorted(set(self.backing.keys()) | set(self._cache))

    def persist(self) -> int:
        """Write changed states back to the mapping; return how many."""
        for key in self._dirty:
            self.backing[key] = {
                "state": self._dump(self._cache[key]),
                "offsets": self._offsets.get(key, {}),
            }
        written = len(self._dirty)
        self._dirty.clear()
        return written

    def forget(self) -> None:
        """Drop the cache (after a rebalance another worker may have changed the backing)."""
        self._cache.clear()
        self._offsets.clear()
        self._dirty.clear()


def dead_letter(
    topology: Topology,
    rejection: Rejection,
    raw: bytes,
    source: SourceRef,
    *,
    stage: str,
    key: bytes | None = None,
) -> Emit:
    """A dead letter for `raw` with its reason, detail and origin."""
    letter = DeadLetter(
        reason=rejection.reason,
        detail=rejection.detail[:2000],
        stage=stage,
        source_topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        original=raw,
        received_at=datetime.now(UTC),
    )
    return Emit(
        topology.topics.name("deadletter"),
        key,
        letter.model_dump_json().encode(),
        "deadletter",
        str(rejection.reason),
    )


_NOWHERE = SourceRef("")


def reading_key(reading: Reading, topology: Topology) -> str:
    """Partition key of a reading: its district (its city when it has none)."""
    return reading.areas.district or topology.city.code


# --------------------------------------------------------------------------- normalize


class NormalizeStage:
    """Raw bytes from the raw topics -> readings, reports and dead letters.

    Re-sent events (same id within ``dedup_window_seconds``) are dead-lettered as
    ``duplicate``; the window is this process's memory, so a restart forgets it (a replay
    after a crash then produces the same deterministic ids, which detection and the store
    absorb idempotently).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        max_message_bytes: int = 1_048_576,
        dedup_window_seconds: float = 600.0,
    ) -> None:
        self.topology = topology
        self.normalizer = Normalizer(
            topology,
            max_message_bytes=max_message_bytes,
            dedup=DuplicateFilter(window=dedup_window_seconds),
        )
        self._readings = topology.topics.name("readings")
        self._reports = topology.topics.name("reports")
        self.last_format: str = "unknown"

    def forget(self) -> None:
        """Forget seen ids (after a rebalance the partitions may be someone else's)."""
        if self.normalizer.dedup is not None:
            self.normalizer.dedup.clear()

    def process(self, raw: bytes | None, headers: Headers, source: SourceRef) -> list[Emit]:
        """Every output of one raw record (several readings for one NGSI entity, say)."""
        raw = raw or b""
        result = self.normalizer.normalize(raw, headers, source=source.topic)
        self.last_format = result.format or "unknown"
        emits: list[Emit] = []
        traced = source.partition is not None and source.offset is not None
        for index, event in enumerate(result.events):
            origin = (source.origin_header(index),) if traced else ()
            value = event.model_dump_json().encode()
            if isinstance(event, Reading):
                key = reading_key(event, self.topology).encode()
                emits.append(Emit(self._readings, key, value, "reading", headers=origin))
            else:
                key = event.category.encode()
                emits.append(Emit(self._reports, key, value, "report", headers=origin))
        for rejection in result.rejections:
            emits.append(dead_letter(self.topology, rejection, raw, source, stage="normalize"))
        return emits


# --------------------------------------------------------------------------- detect


STATE_KEY_SEPARATOR = "\x1f"
"""Joins a record key and a state's own key into one state-table key.

Why: a district holds thousands of rule states; one table entry per state keeps what a
batch writes to the changelog proportional to what it touched (one entry per district
re-wrote every state of the district each time). The part before the separator is the
source record's key, which decides the changelog partition (`pipeline.engine.worker.app`)."""


def state_table_key(record_key: str, state_key: str) -> str:
    """The table key of one state that records with `record_key` change."""
    return f"{record_key}{STATE_KEY_SEPARATOR}{state_key}"


def record_key_of(table_key: str) -> str:
    """The source record key a state-table key belongs to (partitioning)."""
    return table_key.split(STATE_KEY_SEPARATOR, 1)[0]


def incident_event_emit(topology: Topology, event: IncidentEvent) -> Emit:
    """An incident event on the internal topic, keyed by incident id (for the lifecycle)."""
    incident = event.incident.model_copy(update={"last_action": event.action})
    return Emit(
        topology.topics.name("incident_events"),
        incident.incident_id.encode(),
        incident.model_dump_json().encode(),
        "incident_event",
        str(event.action),
    )


class DetectStage:
    """Readings and reports -> incident events (the lifecycle stage decides what they mean).

    Rule states (per rule and subject) live in `backing` under `state_table_key(district,
    state key)`; report cluster states (per category) in `cluster_backing`.
    """

    def __init__(
        self,
        topology: Topology,
        backing: MutableMapping[str, Any],
        cluster_backing: MutableMapping[str, Any],
    ) -> None:
        self.topology = topology
        self.states: KeyedStates[detect.DetectorState] = KeyedStates(
            backing, detect.DetectorState.from_dict, detect.DetectorState.to_dict
        )
        self.cluster_states: KeyedStates[clusters.ClusterState] = KeyedStates(
            cluster_backing, clusters.ClusterState.from_dict, clusters.ClusterState.to_dict
        )
        self._rules_by_metric: dict[str, list[Any]] = {}
        for rule in topology.rules:
            self._rules_by_metric.setdefault(str(rule.metric), []).append(rule)

    def on_reading(self, key: str, reading: Reading, source: SourceRef = _NOWHERE) -> list[Emit]:
        """Evaluate every rule of the reading's metric."""
        rules = self._rules_by_metric.get(reading.metric)
        if not rules:
            return []
        emits: list[Emit] = []
        for rule in rules:
            subject = detect.subject_for(reading, rule, self.topology)
            if subject is None:
                continue
            entry = state_table_key(key, detect.state_key(str(rule.id), subject))
            if self.states.already_applied(entry, source):
                continue
            state = self.states.peek(entry) or detect.new_state(rule, subject)
            new, events = detect.step(state, reading, rule, self.topology)
            self.states.replace(entry, new)
            emits.extend(incident_event_emit(self.topology, event) for event in events)
        return emits

    def on_report(
        self, key: str, report: CitizenReport, source: SourceRef = _NOWHERE
    ) -> list[Emit]:
        """Urgent reports open incidents at once; others may form a cluster."""
        if self.cluster_states.already_applied(key, source):
            return []
        state = self.cluster_states.get(key, lambda: clusters.ClusterState(category=key))
        new, events = clusters.step(state, report, self.topology)
        self.cluster_states.replace(key, new)
        return [incident_event_emit(self.topology, event) for event in events]

    def finish(self, watermark: datetime) -> list[Emit]:
        """Push every state's watermark (end of a dry run's input)."""
        rules = {str(rule.id): rule for rule in self.topology.rules}
        emits: list[Emit] = []
        for entry in self.states.keys():
            state = self.states.peek(entry)
            if state is None:
                continue
            new, events = detect.advance(state, watermark, rules[state.rule_id], self.topology)
            self.states.replace(entry, new)
            emits.extend(incident_event_emit(self.topology, event) for event in events)
        return emits

    def persist(self) -> int:
        """Write changed rule and cluster states back; how many."""
        return self.states.persist() + self.cluster_states.persist()

    def forget(self) -> None:
        """Drop the caches (after a rebalance)."""
        self.states.forget()
        self.cluster_states.forget()


# --------------------------------------------------------------------------- lifecycle


@dataclass
class IncidentRecord:
    """The lifecycle's state of one incident: the incident and its audit chain head."""

    incident: Incident
    head: ChainHead

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident.model_dump(mode="json"),
            "head": {"seq": self.head.seq, "hash": self.head.hash},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IncidentRecord:
        head = data["head"]
        return cls(
            Incident.model_validate(data["incident"]),
            ChainHead(seq=int(head["seq"]), hash=str(head["hash"])),
        )


class LifecycleStage:
    """Detection events, handling units' updates and SLA clocks -> published transitions.

    Every accepted transition goes to the incident's city, district and street topics and,
    hash-chained, to the audit topic; a refused update goes to the dead-letter topic.
    """

    def __init__(self, topology: Topology, backing: MutableMapping[str, Any]) -> None:
        self.topology = topology
        self.states: KeyedStates[IncidentRecord] = KeyedStates(
            backing, IncidentRecord.from_dict, IncidentRecord.to_dict
        )
        self._audit_topic = topology.topics.name("audit")

    def persist(self) -> int:
        """Write changed states back; how many."""
        return self.states.persist()

    def forget(self) -> None:
        """Drop the cache (after a rebalance)."""
        self.states.forget()

    def on_incident_event(self, raw: bytes, source: SourceRef) -> list[Emit]:
        """Merge a detection event into the incident it belongs to."""
        try:
            incident = Incident.model_validate_json(raw)
        except ValidationError as exc:
            rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc))
            return [dead_letter(self.topology, rejection, raw, source, stage="lifecycle")]
        if self.states.already_applied(incident.incident_id, source):
            return []
        record = self.states.peek(incident.incident_id)
        event = IncidentEvent.from_incident(incident)
        outcome = apply_detection(record.incident if record else None, event, self.topology)
        if isinstance(outcome, Rejection):
            if outcome.reason == RejectReason.duplicate:
                return []  # a replayed detection event: already applied
            return [dead_letter(self.topology, outcome, raw, source, stage="lifecycle")]
        return self._commit(outcome)

    def on_update(self, raw: bytes, source: SourceRef) -> list[Emit]:
        """Apply a handling unit's update, or dead-letter it with the reason."""
        key = raw[:0]
        try:
            update = IncidentUpdate.model_validate_json(raw)
        except ValidationError as exc:
            reason = (
                RejectReason.invalid_json
                if any(err["type"] == "json_invalid" for err in exc.errors())
                else RejectReason.schema_violation
            )
            rejection = Rejection(reason=reason, detail=_short(exc))
            return [dead_letter(self.topology, rejection, raw, source, stage="lifecycle")]
        record = self.states.peek(update.incident_id)
        if record is not None and self.states.already_applied(update.incident_id, source):
            return []
        if record is None:
            rejection = Rejection(
                reason=RejectReason.unknown_incident,
                detail=f"no incident {update.incident_id!r} in this deployment",
            )
            key = update.incident_id.encode()
            return [dead_letter(self.topology, rejection, raw, source, stage="lifecycle", key=key)]
        outcome = apply(record.incident, update, self.topology)
        if isinstance(outcome, Rejection):
            key = update.incident_id.encode()
            return [dead_letter(self.topology, outcome, raw, source, stage="lifecycle", key=key)]
        return self._commit(outcome)

    def check_deadlines(self, now: datetime) -> list[Emit]:
        """Escalate every local incident past its acknowledge or resolve deadline."""
        emits: list[Emit] = []
        for key in self.states.keys():
            record = self.states.peek(key)
            if record is None:
                continue
            for transition in check_sla(record.incident, now, self.topology):
                emits.extend(self._commit(transition))
        return emits

    def open_incidents(self) -> Iterable[Incident]:
        """Incidents not yet resolved or closed (for the open-incidents gauge)."""
        for key in self.states.keys():
            record = self.states.peek(key)
            if record is not None and record.incident.state not in ("resolved", "closed"):
                yield record.incident

    def _commit(self, transition: Transition) -> list[Emit]:
        incident = transition.incident
        record = self.states.get(
            incident.incident_id, lambda: IncidentRecord(incident, ChainHead())
        )
        chain = AuditChain(heads={incident.incident_id: record.head})
        audit = chain.record(transition)
        record.incident = incident
        record.head = chain.heads[incident.incident_id]
        key = incident.incident_id.encode()
        value = incident.model_dump_json().encode()
        emits = [
            Emit(topic, key, value, "incident", str(transition.action))
            for topic in route(incident, self.topology)
        ]
        emits.append(
            Emit(
                self._audit_topic, key, audit.model_dump_json().encode(), "audit", str(audit.action)
            )
        )
        return emits


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()[:10]
    )


# --------------------------------------------------------------------------- aggregate


class AggregateStage:
    """Readings -> closed-window aggregate rows for the street and district levels.

    City rows are rolled up from district rows when read (the store's city query): a city
    spans every partition, and one worker sees only its own, while a district lives wholly
    in one partition, so its rows are exact wherever it is computed.
    """

    def __init__(self, topology: Topology, backing: MutableMapping[str, Any]) -> None:
        self.topology = topology
        agg = topology.aggregation
        self._levels = tuple(
            AreaLevel(level) for level in agg.levels if AreaLevel(level) != AreaLevel.city
        )
        self._new = lambda: WindowState(
            window=agg.window,
            allowed_lateness=agg.allowed_lateness,
            city_code=topology.city.code,
            levels=self._levels,
        )
        self.states: KeyedStates[WindowState] = KeyedStates(
            backing, WindowState.from_dict, WindowState.to_dict
        )
        self.breaches = detect.BreachCheck(topology)
        self.late = 0
        self._sensors_by_key: dict[str, list[str]] = {}
        for sensor in topology.sensors:
            codes = topology.admin_codes(sensor.area)
            key = codes.get(AreaLevel.district) or topology.city.code
            self._sensors_by_key.setdefault(key, []).append(sensor.id)

    def persist(self) -> int:
        """Write changed states back; how many."""
        return self.states.persist()

    def forget(self) -> None:
        """Drop the cache (after a rebalance)."""
        self.states.forget()

    def on_reading(
        self, key: str, reading: Reading, source: SourceRef = _NOWHERE
    ) -> list[AggregateRow]:
        """Count the reading; return the rows of windows it closed."""
        if self.states.already_applied(key, source):
            return []
        state = self.states.get(key, self._new)
        if state.max_event_us is None:  # a new state waits for the area's registered sensors
            state.expect(self._sensors_by_key.get(key, ()), reading.observed_at)
        if state.add(reading, self.breaches(reading)):
            self.late += 1
            return []
        return state.advance()

    def finish(self) -> list[AggregateRow]:
        """Close every open window (end of a dry run's input)."""
        rows: list[AggregateRow] = []
        for key in self.states.keys():
            rows.extend(self.states.get(key, self._new).flush_all())
        return rows


def rows_to_jsonl(rows: Iterable[AggregateRow]) -> bytes:
    """Aggregate rows as JSON lines (the dry run's aggregates.jsonl)."""
    return b"".join(orjson.dumps(row.model_dump(mode="json")) + b"\n" for row in rows)
