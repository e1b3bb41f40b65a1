"""A tamper-evident audit trail of incident transitions: one hash chain per incident.

Why a chain per incident and not one global chain: the audit topic is keyed by incident id,
so Kafka orders events per incident only; a global chain would depend on how partitions
interleave. Per incident, each event carries ``seq`` (1, 2, 3, ...) and the hash of the
previous event (``prev_hash``; 64 zeros for the first), and its own ``hash`` is::

    sha256(canonical_json(event without the ``hash`` field))

where the canonical JSON has sorted keys, no whitespace, UTF-8 and datetimes as ISO 8601
in UTC. ``prev_hash`` is one of the hashed fields, so altering, dropping or reordering any
event breaks the chain at a point :func:`verify` can name. Fields added since the first
version (``update_id``, ``sent_at``: :data:`OPTIONAL_FIELDS`) are hashed only when set, so
chains written before them still verify.

Redelivery is not tampering: the pipeline is at-least-once, and a worker killed between
sending a transition and persisting its state sends it again, byte for byte (the
redelivery contract, docs/incidents.md). :func:`verify` counts a later record with the same
incident, seq and hash and identical bytes as a *redelivery*; the same seq with different
bytes is a ``duplicate`` problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.models import AuditEvent, IncidentAction, IncidentState
from pipeline.rules.lifecycle import Transition

GENESIS_HASH = "0" * 64
#: Hashed only when not None (added after chains were first written).
OPTIONAL_FIELDS = ("update_id", "sent_at")


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact separators, UTF-8 kept as is."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def event_hash(event: AuditEvent) -> str:
    """The hash ``event`` should carry: sha256 over its canonical JSON without ``hash``."""
    payload = event.model_dump(mode="json", exclude={"hash"})
    for name in OPTIONAL_FIELDS:
        if payload.get(name) is None:
            payload.pop(name, None)
    return hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(slots=True)
class ChainHead:
    """Where one incident's chain currently ends (what the worker persists per incident)."""

    seq: int = 0
    hash: str = GENESIS_HASH


@dataclass(slots=True)
class AuditChain:
    """Builds the next audit event of each incident; the heads are its only state.

    The worker persists ``heads`` (``to_dict``/``from_dict``), keyed by incident id, in a
    table partitioned like the audit topic; a restart continues every chain where it ended.
    """

    heads: dict[str, ChainHead] = field(default_factory=dict)

    def append(
        self,
        *,
        incident_id: str,
        action: IncidentAction,
        actor: str,
        at: datetime,
        from_state: IncidentState | None,
        to_state: IncidentState,
        reason: str | None = None,
        update_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> AuditEvent:
        """Chain and return the next event of ``incident_id`` (and advance its head)."""
        head = self.heads.get(incident_id) or ChainHead()
        unsigned = AuditEvent(
            incident_id=incident_id,
            seq=head.seq + 1,
            action=action,
            actor=actor,
            at=at,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            update_id=update_id,
            sent_at=sent_at,
            prev_hash=head.hash,
            hash=GENESIS_HASH,  # placeholder: the hash never covers itself
        )
        event = unsigned.model_copy(update={"hash": event_hash(unsigned)})
        self.heads[incident_id] = ChainHead(seq=event.seq, hash=event.hash)
        return event

    def record(self, transition: Transition) -> AuditEvent:
        """The audit event of a lifecycle :class:`~pipeline.rules.lifecycle.Transition`."""
        return self.append(
            incident_id=transition.incident.incident_id,
            action=transition.action,
            actor=transition.actor,
            at=transition.at,
            from_state=transition.from_state,
            to_state=transition.to_state,
            reason=transition.reason,
            update_id=transition.update_id,
            sent_at=transition.sent_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot of every chain head."""
        return {key: {"seq": h.seq, "hash": h.hash} for key, h in sorted(self.heads.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditChain:
        """Rebuild from :meth:`to_dict` output."""
        heads = {
            str(key): ChainHead(seq=int(value["seq"]), hash=str(value["hash"]))
            for key, value in data.items()
        }
        return cls(heads=heads)


class ProblemKind(StrEnum):
    """What :func:`verify` found wrong at one place in a chain."""

    altered = "altered"  # the stored hash is not the hash of the event's content
    dropped = "dropped"  # a seq between 1 and the highest seen never arrived
    reordered = "reordered"  # arrived after an event with a higher seq
    duplicate = "duplicate"  # a second event with the same seq
    broken_link = "broken_link"  # prev_hash is not the hash of the event with seq - 1
    truncated = "truncated"  # the chain ends before the head the writer recorded


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect: which incident, which seq, and where in the input (0-based position).

    For ``dropped`` the seq is the missing one and the position is that of the first event
    after the hole; for ``truncated`` the position is -1 (nothing there to point at).
    """

    incident_id: str
    seq: int
    position: int
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict over a set of audit events: ``ok`` only when ``problems`` is empty."""

    incidents: int
    events: int
    problems: tuple[Problem, ...]
    redeliveries: int = 0
    """Byte-identical copies of an event seen earlier (at-least-once delivery, not a
    problem); ``events`` counts them too."""

    @property
    def ok(self) -> bool:
        """True when every chain is intact."""
        return not self.problems


#: One incident's events as they arrived: seq -> (position in the input, event).
_Seen = dict[int, tuple[int, AuditEvent]]


def verify(
    events: Iterable[AuditEvent],
    *,
    heads: Mapping[str, ChainHead] | None = None,
    raw: Sequence[bytes] | None = None,
) -> VerifyReport:
    """Check every incident's chain as given (input order matters); list every problem.

    - redelivery (not a problem, counted): an event with the seq and hash of one seen
      before and the same bytes (``raw[i]``, the record as read, when given; else equal
      content);
    - altered: an event's ``hash`` is not the hash of its content;
    - reordered: an event arrives after one with a higher seq;
    - duplicate: a second, different event with the same seq;
    - dropped: a seq below the highest one seen is missing;
    - broken_link: ``prev_hash`` differs from the hash of the event with seq - 1 (or from
      the genesis hash for seq 1): this is what exposes an event that was altered *and*
      re-hashed, since the next event still points at the original;
    - truncated (only with ``heads``, the writer's :class:`AuditChain` heads): the chain
      ends below the recorded head, or its last hash differs. Without heads, dropping the
      newest events of a chain cannot be told from them never having been written.
    """
    problems: list[Problem] = []
    by_incident, count, redeliveries = _arrivals(events, problems, raw)
    for iid, seen in by_incident.items():
        problems.extend(_chain_problems(iid, seen))
    if heads is not None:
        for iid, head in heads.items():
            truncated = _truncated(iid, head, by_incident.get(iid))
            if truncated is not None:
                problems.append(truncated)
    problems.sort(key=lambda p: (p.incident_id, p.seq, p.position, p.kind))
    return VerifyReport(
        incidents=len(by_incident),
        events=count,
        problems=tuple(problems),
        redeliveries=redeliveries,
    )


def _arrivals(
    events: Iterable[AuditEvent], problems: list[Problem], raw: Sequence[bytes] | None
) -> tuple[dict[str, _Seen], int, int]:
    """Every incident's events by seq, how many events there were and how many of them
    were redeliveries; the problems one event shows on arrival (altered, duplicate,
    reordered) go to ``problems``."""
    by_incident: dict[str, _Seen] = {}
    tops: dict[str, int] = {}
    count = redeliveries = 0
    for position, event in enumerate(events):
        count += 1
        iid, seq = event.incident_id, event.seq
        expected = event_hash(event)
        if expected != event.hash:
            detail = f"stored hash {event.hash[:12]}... != content hash {expected[:12]}..."
            problems.append(Problem(iid, seq, position, ProblemKind.altered, detail))
        seen = by_incident.setdefault(iid, {})
        if seq in seen:
            first, original = seen[seq]
            if _same_record(raw, first, original, position, event):
                redeliveries += 1
                continue
            detail = f"seq {seq} already seen at position {first}, with different content"
            problems.append(Problem(iid, seq, position, ProblemKind.duplicate, detail))
            continue
        top = tops.get(iid, 0)
        if seq < top:
            detail = f"seq {seq} arrived after seq {top}"
            problems.append(Problem(iid, seq, position, ProblemKind.reordered, detail))
        seen[seq] = (position, event)
        tops[iid] = max(top, seq)
    return by_incident, count, redeliveries


def _same_record(
    raw: Sequence[bytes] | None, first: int, original: AuditEvent, at: int, event: AuditEvent
) -> bool:
    """True when the event at ``at`` is a redelivery of the one at ``first``: same hash,
    and the same bytes (or, without ``raw``, the same content)."""
    if event.hash != original.hash:
        return False
    if raw is not None:
        return raw[at] == raw[first]
    return event == original


def _chain_problems(iid: str, seen: _Seen) -> list[Problem]:
    """The holes (dropped) and bad links (broken_link) of one incident's chain."""
    problems: list[Problem] = []
    for seq in range(1, max(seen) + 1):
        if seq not in seen:
            after = min(pos for s, (pos, _) in seen.items() if s > seq)
            problems.append(Problem(iid, seq, after, ProblemKind.dropped, f"seq {seq} is missing"))
            continue
        position, event = seen[seq]
        if seq == 1:
            want = GENESIS_HASH
        elif seq - 1 in seen:
            want = seen[seq - 1][1].hash
        else:
            continue  # already reported as dropped
        if event.prev_hash != want:
            detail = f"prev_hash {event.prev_hash[:12]}... != {want[:12]}... (seq {seq - 1})"
            problems.append(Problem(iid, seq, position, ProblemKind.broken_link, detail))
    return problems


def _truncated(iid: str, head: ChainHead, seen: _Seen | None) -> Problem | None:
    """A problem when the chain as read ends before the head its writer recorded."""
    if not seen:
        if head.seq <= 0:
            return None
        detail = f"no events, writer's head is seq {head.seq}"
        return Problem(iid, head.seq, -1, ProblemKind.truncated, detail)
    top = max(seen)
    if top < head.seq or (top == head.seq and seen[top][1].hash != head.hash):
        detail = f"chain ends at seq {top}, writer's head is seq {head.seq}"
        return Problem(iid, head.seq, -1, ProblemKind.truncated, detail)
    return None
