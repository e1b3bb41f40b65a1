"""Incident events, unit updates and SLA clocks -> published transitions and the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pipeline.engine.emit import ORIGIN_SPAN, Emit, Position, SourceRef
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.engine.state import KeyedStates
from pipeline.models import (
    Incident,
    IncidentEvents,
    IncidentUpdate,
    Rejection,
    RejectReason,
)
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

    def on_incident_events(self, raw: bytes, source: SourceRef) -> list[Emit]:
        """Merge detection's events (one message: an incident's events in order) into the
        incident they belong to."""
        try:
            incidents = IncidentEvents.model_validate_json(raw).root
        except ValidationError as exc:
            rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc))
            return [dead_letter(self.topology, rejection, raw, source, stage="lifecycle")]
        emits: list[Emit] = []
        base = source.position()
        for index, incident in enumerate(incidents):
            where = (
                None
                if base is None
                else Position(base.partition, base.offset * ORIGIN_SPAN + index)
            )
            emits.extend(self._on_incident_event(incident, raw, source, where))
        return emits

    def _on_incident_event(
        self, incident: Incident, raw: bytes, source: SourceRef, where: Position | None
    ) -> list[Emit]:
        if self.states.already_applied(incident.incident_id, where):
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
        if record is not None and self.states.already_applied(
            update.incident_id, source.position()
        ):
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
