"""Incident events, unit updates and SLA clocks -> published transitions, replies and the audit.

Deterministic: every output is a function of the input record (its value, headers and
broker timestamp) and the state, never of the wall clock, so the worker and the dry run
agree and a redelivered record yields byte-identical outputs. The SLA clock's time is
the caller's (`check_deadlines(now)`), and it only decides *whether* a deadline passed:
an escalation takes effect at the missed deadline (:func:`~pipeline.rules.sla.check_sla`).
Before a record changes an incident, the escalations due by the record's receive time are
applied first, so a record and the SLA timer act on an incident in the same order when
the record is redelivered after a crash (see "Redelivery" in docs/incidents.md).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.engine.emit import ORIGIN_SPAN, Emit, Position, Record
from pipeline.engine.stages.dead_letters import dead_letter
from pipeline.engine.state import KeyedStates
from pipeline.models import (
    Incident,
    IncidentEvents,
    IncidentUpdate,
    Rejection,
    RejectReason,
    UpdateReply,
)
from pipeline.rules.audit import AuditChain, ChainHead
from pipeline.rules.lifecycle import IncidentEvent, Transition, apply, apply_detection
from pipeline.rules.routing import publishes, reply_topic, route
from pipeline.rules.sla import check_sla
from pipeline.rules.units import authenticate, check_sent_at
from pipeline.topology import Topology

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ID = 200


@dataclass
class IncidentRecord:
    """The lifecycle's state of one incident: the incident, its audit chain head, when its
    evidence was last published (event time), and the ids of the authentic updates seen
    within `incidents.max_update_age` (id -> the update's `at`), against replays."""

    incident: Incident
    head: ChainHead
    published_evidence_at: datetime | None = None
    update_ids: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        published = self.published_evidence_at
        return {
            "incident": self.incident.model_dump(mode="json"),
            "head": {"seq": self.head.seq, "hash": self.head.hash},
            "published_evidence_at": None if published is None else published.isoformat(),
            "update_ids": dict(self.update_ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IncidentRecord:
        head = data["head"]
        published = data.get("published_evidence_at")
        return cls(
            Incident.model_validate(data["incident"]),
            ChainHead(seq=int(head["seq"]), hash=str(head["hash"])),
            None if published is None else datetime.fromisoformat(published),
            {str(k): str(v) for k, v in (data.get("update_ids") or {}).items()},
        )

    def remember(self, update: IncidentUpdate, max_age: timedelta, now: datetime) -> None:
        """Keep `update`'s id; forget ids whose update is older than `max_age` (such an
        update is refused as too old anyway, so a replay of it still fails)."""
        horizon = now - max_age
        self.update_ids = {
            uid: at for uid, at in self.update_ids.items() if datetime.fromisoformat(at) >= horizon
        }
        self.update_ids[update.update_id] = update.at.isoformat()


class LifecycleStage:
    """Detection events, handling units' updates and SLA clocks -> published transitions.

    An accepted transition goes, hash-chained, to the audit topic and, when a unit acts
    on such a change (:func:`~pipeline.rules.routing.publishes`), to the incident's city,
    district and street topics. Every update with a readable id gets a reply on the
    replies topic, keyed by incident id; a refused one also goes to the dead-letter topic.
    """

    def __init__(self, topology: Topology, backing: MutableMapping[str, Any]) -> None:
        self.topology = topology
        self.states: KeyedStates[IncidentRecord] = KeyedStates(
            backing, IncidentRecord.from_dict, IncidentRecord.to_dict
        )
        self._audit_topic = topology.topics.name("audit")
        self._reply_topic = reply_topic(topology)

    def persist(self) -> int:
        """Write changed states back; how many."""
        return self.states.persist()

    def forget(self) -> None:
        """Drop the cache (after a rebalance)."""
        self.states.forget()

    # -- detection -------------------------------------------------------------------

    def on_incident_events(self, record: Record) -> list[Emit]:
        """Merge detection's events (one message: an incident's events in order) into the
        incident they belong to."""
        raw, source = record.value, record.source
        try:
            incidents = IncidentEvents.model_validate_json(raw).root
        except ValidationError as exc:
            rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc))
            return [self._dead_letter(rejection, record)]
        emits: list[Emit] = []
        base = source.position()
        for index, incident in enumerate(incidents):
            where = (
                None
                if base is None
                else Position(base.partition, base.offset * ORIGIN_SPAN + index)
            )
            emits.extend(self._on_incident_event(incident, record, where))
        return emits

    def _on_incident_event(
        self, incident: Incident, record: Record, where: Position | None
    ) -> list[Emit]:
        if self.states.already_applied(incident.incident_id, where):
            return []
        emits = self._escalate_due(incident.incident_id, _received_at(record))
        stored = self.states.peek(incident.incident_id)
        event = IncidentEvent.from_incident(incident)
        outcome = apply_detection(stored.incident if stored else None, event, self.topology)
        if outcome is None:
            return emits
        if isinstance(outcome, Rejection):
            if outcome.reason == RejectReason.duplicate:
                return emits  # a replayed detection event: already applied
            return [*emits, self._dead_letter(outcome, record)]
        return emits + self._commit(outcome)

    # -- units' updates --------------------------------------------------------------

    def on_update(self, record: Record) -> list[Emit]:
        """Apply a handling unit's update, or refuse it with the reason; reply either way."""
        received = _received_at(record)
        try:
            update = IncidentUpdate.model_validate_json(record.value)
        except ValidationError as exc:
            reason = (
                RejectReason.invalid_json
                if any(err["type"] == "json_invalid" for err in exc.errors())
                else RejectReason.schema_violation
            )
            rejection = Rejection(reason=reason, detail=_short(exc))
            return self._refuse_unreadable(rejection, record, received)
        when = update.at if received is None else received
        stored = self.states.peek(update.incident_id)
        if stored is not None and self.states.already_applied(
            update.incident_id, record.source.position()
        ):
            return []
        checked = authenticate(update, record.value, record.headers, self.topology)
        if isinstance(checked, Rejection):
            return self._refuse(checked, update, record, when)
        if received is not None and (skewed := check_sent_at(update, received, self.topology)):
            return self._refuse(skewed, update, record, when)
        if stored is None:
            detail = f"no incident {update.incident_id!r} in this deployment"
            refusal = Rejection(reason=RejectReason.unknown_incident, detail=detail)
            return self._refuse(refusal, update, record, when)
        if update.update_id in stored.update_ids:
            detail = f"update {update.update_id!r} was already received"
            refusal = Rejection(reason=RejectReason.duplicate, detail=detail)
            return self._refuse(refusal, update, record, when)
        # Authentic and new: remembered whatever comes of it, so it cannot be replayed.
        emits = self._escalate_due(update.incident_id, received)
        state = self.states.get(update.incident_id, lambda: stored)
        state.remember(update, self.topology.incidents.max_update_age, when)
        outcome = apply(state.incident, update, self.topology, received_at=when)
        if isinstance(outcome, Rejection):
            return emits + self._refuse(outcome, update, record, when, state.incident)
        emits.extend(self._commit(outcome))
        emits.append(self._reply(_reply_to(update, when, outcome.incident)))
        return emits

    def _refuse(
        self,
        rejection: Rejection,
        update: IncidentUpdate,
        record: Record,
        when: datetime,
        incident: Incident | None = None,
    ) -> list[Emit]:
        reply = _reply_to(update, when, incident, rejection)
        return [self._reply(reply), self._dead_letter(rejection, record, update.incident_id)]

    def _refuse_unreadable(
        self, rejection: Rejection, record: Record, received: datetime | None
    ) -> list[Emit]:
        """A record that is no valid update: a dead letter, and a reply when its update and
        incident ids can still be read (so the sender learns which update failed)."""
        ids = _readable_ids(record.value)
        emits = [self._dead_letter(rejection, record, ids[1] if ids else None)]
        if ids is not None:
            reply = UpdateReply(
                update_id=ids[0],
                incident_id=ids[1],
                accepted=False,
                reason=rejection.reason,
                detail=rejection.detail,
                received_at=received or _EPOCH,
            )
            emits.insert(0, self._reply(reply))
        return emits

    def _reply(self, reply: UpdateReply) -> Emit:
        reason = "accepted" if reply.reason is None else str(reply.reason)
        value = reply.model_dump_json().encode()
        return Emit(self._reply_topic, reply.incident_id.encode(), value, "reply", reason)

    def _dead_letter(
        self, rejection: Rejection, record: Record, incident_id: str | None = None
    ) -> Emit:
        key = None if incident_id is None else incident_id.encode()
        return dead_letter(
            self.topology, rejection, record.value, record.source, stage="lifecycle", key=key,
            received_at=_received_at(record),
        )  # fmt: skip

    # -- SLA clock, queries ------------------------------------------------------------

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

    def _escalate_due(self, incident_id: str, when: datetime | None) -> list[Emit]:
        """Every escalation of `incident_id` due by `when` (a record's receive time; none
        without one, as in a dry run), before that record changes the incident."""
        emits: list[Emit] = []
        while when is not None and (record := self.states.peek(incident_id)) is not None:
            transitions = check_sla(record.incident, when, self.topology)
            if not transitions:
                break
            for transition in transitions:
                emits.extend(self._commit(transition))
        return emits

    def incidents(self) -> Iterable[Incident]:
        """Every incident this stage holds (its partitions' in the worker)."""
        for key in self.states.keys():
            record = self.states.peek(key)
            if record is not None:
                yield record.incident

    def incident(self, incident_id: str) -> Incident | None:
        """One incident by id, if this stage holds it."""
        record = self.states.peek(incident_id)
        return None if record is None else record.incident

    def open_incidents(self) -> Iterable[Incident]:
        """Incidents not yet resolved or closed (for the open-incidents gauge)."""
        return (i for i in self.incidents() if i.state not in ("resolved", "closed"))

    # -- transitions -----------------------------------------------------------------

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
        emits: list[Emit] = []
        evidence_at = incident.evidence.last_at
        if publishes(transition.action, evidence_at, record.published_evidence_at, self.topology):
            record.published_evidence_at = evidence_at
            value = incident.model_dump_json().encode()
            emits.extend(
                Emit(topic, key, value, "incident", str(transition.action))
                for topic in route(incident, self.topology)
            )
        emits.append(
            Emit(
                self._audit_topic, key, audit.model_dump_json().encode(), "audit", str(audit.action)
            )
        )
        return emits


def _reply_to(
    update: IncidentUpdate,
    when: datetime,
    incident: Incident | None,
    rejection: Rejection | None = None,
) -> UpdateReply:
    """The reply to `update`: accepted (no `rejection`) or refused, with the incident's
    state and version after it (when the incident is known)."""
    return UpdateReply(
        update_id=update.update_id,
        incident_id=update.incident_id,
        unit=update.unit,
        action=str(update.action),
        accepted=rejection is None,
        reason=None if rejection is None else rejection.reason,
        detail=None if rejection is None else rejection.detail,
        state=None if incident is None else incident.state,
        version=None if incident is None else incident.version,
        received_at=when,
    )


def _received_at(record: Record) -> datetime | None:
    """The record's broker timestamp (the updates topic's is its log-append time)."""
    if record.timestamp_ms is None:
        return None
    return _EPOCH + timedelta(milliseconds=record.timestamp_ms)


def _readable_ids(raw: bytes) -> tuple[str, str] | None:
    """`(update_id, incident_id)` of a record that is not a valid update, when both are
    there as short strings."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    update_id, incident_id = doc.get("update_id"), doc.get("incident_id")
    if isinstance(update_id, str) and isinstance(incident_id, str):
        if 0 < len(update_id) <= _MAX_ID and 0 < len(incident_id) <= _MAX_ID:
            return update_id, incident_id
    return None


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()[:10]
    )
