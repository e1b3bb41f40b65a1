"""Readings and reports -> incident events (threshold rules and report clusters)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pipeline.aggregates.watermark import Progress, home_partition, merge_progress
from pipeline.engine.emit import Emit, Position
from pipeline.engine.state import KeyedStates, state_table_key
from pipeline.models import (
    CitizenReport,
    ReadingBatch,
    ReadingRow,
)
from pipeline.rules import clusters, families
from pipeline.rules.incidents import (
    IncidentEvent,
)
from pipeline.topology import Topology

#: The most snapshot bytes one incident-events message carries: a long breach streak in
#: one large batch (thousands of readings) once made a single message larger than the
#: broker accepts, and the worker stopped on that batch at every restart.
EVENTS_MESSAGE_BYTES = 256 * 1024


def incident_event_emits(topology: Topology, events: Iterable[IncidentEvent]) -> list[Emit]:
    """Detection's events for the lifecycle: one message per incident, keyed by its id,
    holding that incident's events of the batch in order (a JSON array of incident
    snapshots whose `last_action` is the event's action); the emit's reason is the last.
    An incident whose events exceed `EVENTS_MESSAGE_BYTES` gets several messages, in
    order (one key: one partition, so the lifecycle reads them in that order).

    Why per incident: the lifecycle's state is keyed (and partitioned) by incident id, and
    a breach streak yields many events of one incident in one batch: one message carries
    them all instead of one Faust event each."""
    grouped: dict[str, list[list[tuple[bytes, str]]]] = {}
    sizes: dict[str, int] = {}
    limit = min(EVENTS_MESSAGE_BYTES, topology.topics.part_bytes)
    for event in events:
        incident = event.incident.model_copy(update={"last_action": event.action})
        value = incident.model_dump_json().encode()
        chunks = grouped.setdefault(incident.incident_id, [[]])
        size = sizes.get(incident.incident_id, 0)
        if chunks[-1] and size + len(value) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append((value, str(event.action)))
        sizes[incident.incident_id] = size + len(value) + 1
    topic = topology.topics.name("incident_events")
    return [
        Emit(
            topic,
            ident.encode(),
            b"[" + b",".join(value for value, _ in chunk) + b"]",
            "incident_event",
            chunk[-1][1],
            count=len(chunk),
        )
        for ident, chunks in grouped.items()
        for chunk in chunks
    ]


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
        progress_backing: MutableMapping[str, Any] | None = None,
    ) -> None:
        self.topology = topology
        self.progress: KeyedStates[Progress] = KeyedStates(
            {} if progress_backing is None else progress_backing, dict, dict
        )
        self.states: KeyedStates[Any] = KeyedStates(
            backing, families.state_from_dict, families.state_to_dict
        )
        self.cluster_states: KeyedStates[clusters.ClusterState] = KeyedStates(
            cluster_backing, clusters.ClusterState.from_dict, clusters.ClusterState.to_dict
        )
        self._runners: dict[str, Any] = {}
        self._by_metric: dict[str, list[Any]] = {}
        for rule in topology.rules:
            runner = families.family_for(rule).runner(rule, topology)
            self._runners[runner.rule_id] = runner
            self._by_metric.setdefault(runner.metric, []).append(runner)

    def on_readings(
        self,
        key: str,
        batch: ReadingBatch,
        where: Sequence[Position | None],
        rows: Sequence[ReadingRow] | None = None,
    ) -> list[IncidentEvent]:
        """Evaluate every rule of each reading's metric, in batch order.

        `rows` are the batch's rows when the caller has them already."""
        events: list[IncidentEvent] = []
        states = self.states
        by_metric = self._by_metric
        progress = self.progress.peek(key) or {}
        for row, position in zip(batch.rows() if rows is None else rows, where, strict=True):
            runners = by_metric.get(row.metric)
            if runners is None:
                continue
            partition = home_partition(row, position)
            for runner in runners:
                subject = runner.subject(row)
                if subject is None:
                    continue
                entry = state_table_key(key, families.state_key(runner.rule_id, subject))
                if position is not None and states.already_applied(entry, position):
                    continue
                state = states.peek(entry) or runner.new_state(subject)
                new, emitted = runner.step(state, row, partition, progress)
                states.replace(entry, new)
                if emitted:
                    events.extend(emitted)
        if merge_progress(progress, batch.progress):  # it covers the readings before it
            self.progress.replace(key, progress)
        return events

    def on_report(
        self, key: str, report: CitizenReport, position: Position | None = None
    ) -> list[IncidentEvent]:
        """Urgent reports open incidents at once; others may form a cluster."""
        if self.cluster_states.already_applied(key, position):
            return []
        state = self.cluster_states.get(key, lambda: clusters.ClusterState(category=key))
        new, events = clusters.step(state, report, self.topology)
        self.cluster_states.replace(key, new)
        return events

    def finish(self, watermark: datetime) -> list[IncidentEvent]:
        """Push every state's watermark (end of a dry run's input)."""
        events: list[IncidentEvent] = []
        for entry in self.states.keys():
            state = self.states.peek(entry)
            if state is None:
                continue
            new, emitted = self._runners[state.rule_id].advance(state, watermark)
            self.states.replace(entry, new)
            events.extend(emitted)
        return events

    def horizon(self) -> timedelta:
        """How far past the newest reading the end of input must push the watermark so that
        every rule evaluates everything it was fed (the widest area window)."""
        return max((runner.horizon() for runner in self._runners.values()), default=timedelta(0))

    def persist(self) -> int:
        """Write changed rule, cluster and progress states back; how many."""
        return self.states.persist() + self.cluster_states.persist() + self.progress.persist()

    def forget(self) -> None:
        """Drop the caches (after a rebalance)."""
        self.states.forget()
        self.cluster_states.forget()
        self.progress.forget()
