"""Readings and reports -> incident events (threshold rules and report clusters)."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from pipeline.engine.emit import Emit, SourceRef
from pipeline.engine.state import KeyedStates
from pipeline.models import (
    CitizenReport,
    Reading,
)
from pipeline.rules import clusters
from pipeline.rules import detection as detect
from pipeline.rules.incidents import (
    IncidentEvent,
)
from pipeline.topology import Topology

_NOWHERE = SourceRef("")


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
