"""Audit hash chains: building them, and proving alteration, drops and reordering."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import AuditEvent, IncidentAction, IncidentState
from pipeline.rules.audit import (
    GENESIS_HASH,
    AuditChain,
    ChainHead,
    ProblemKind,
    canonical_json,
    event_hash,
    verify,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
STEPS = [
    (IncidentAction.open, None, IncidentState.open),
    (IncidentAction.dispatch, IncidentState.open, IncidentState.dispatched),
    (IncidentAction.acknowledge, IncidentState.dispatched, IncidentState.acknowledged),
    (IncidentAction.resolve, IncidentState.acknowledged, IncidentState.resolved),
    (IncidentAction.close, IncidentState.resolved, IncidentState.closed),
]


def build(chain: AuditChain, incident_id: str = "inc-aaaa000000000001") -> list[AuditEvent]:
    events = []
    for i, (action, before, after) in enumerate(STEPS):
        events.append(
            chain.append(
                incident_id=incident_id,
                action=action,
                actor="310101002/urban-management" if i else "system",
                at=T0 + timedelta(minutes=5 * i),
                from_state=before,
                to_state=after,
                reason=None if i != 3 else "fixed the valve",
            )
        )
    return events


def kinds(report: object) -> list[tuple[str, int, int, ProblemKind]]:
    return [(p.incident_id, p.seq, p.position, p.kind) for p in report.problems]  # type: ignore[attr-defined]


def test_chain_links_and_hashes() -> None:
    events = build(AuditChain())
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH == "0" * 64
    for prev, nxt in zip(events, events[1:], strict=False):
        assert nxt.prev_hash == prev.hash
    # The hash is sha256 over the canonical JSON of everything but the hash itself (and
    # the fields added later, while they are unset).
    payload = events[2].model_dump(mode="json", exclude={"hash", "update_id", "sent_at"})
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert events[2].hash == hashlib.sha256(raw.encode()).hexdigest()
    assert len({e.hash for e in events}) == 5
    report = verify(events)
    assert report.ok and report.events == 5 and report.incidents == 1


def test_canonical_json_is_order_independent_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": "漏水"}) == canonical_json({"a": "漏水", "b": 1})
    assert canonical_json({"a": "漏水"}) == '{"a":"漏水"}'.encode()


def test_chains_are_per_incident_and_heads_round_trip() -> None:
    chain = AuditChain()
    a = build(chain, "inc-a")
    restored = AuditChain.from_dict(json.loads(json.dumps(chain.to_dict())))
    b = build(restored, "inc-b")
    more = restored.append(
        incident_id="inc-a",
        action=IncidentAction.reopen,
        actor="310101",
        at=T0 + timedelta(hours=1),
        from_state=IncidentState.closed,
        to_state=IncidentState.open,
        reason="leak again",
    )
    assert more.seq == 6 and more.prev_hash == a[-1].hash
    interleaved = [x for pair in zip(a, b, strict=True) for x in pair] + [more]
    assert verify(interleaved).ok
    assert restored.heads["inc-b"] == ChainHead(seq=5, hash=b[-1].hash)


def test_altered_event_is_found_where_it_is() -> None:
    events = build(AuditChain())
    events[2] = events[2].model_copy(update={"actor": "310104/someone-else"})
    report = verify(events)
    assert not report.ok
    assert kinds(report) == [("inc-aaaa000000000001", 3, 2, ProblemKind.altered)]


def test_altered_and_rehashed_event_breaks_the_next_link() -> None:
    events = build(AuditChain())
    forged = events[1].model_copy(update={"reason": "never dispatched"})
    events[1] = forged.model_copy(update={"hash": event_hash(forged)})
    assert kinds(verify(events)) == [("inc-aaaa000000000001", 3, 2, ProblemKind.broken_link)]


def test_dropped_event_is_a_gap_at_the_next_event() -> None:
    events = build(AuditChain())
    del events[1]
    assert kinds(verify(events)) == [("inc-aaaa000000000001", 2, 1, ProblemKind.dropped)]


def test_reordered_events_are_named() -> None:
    events = build(AuditChain())
    events[1], events[3] = events[3], events[1]
    assert kinds(verify(events)) == [
        ("inc-aaaa000000000001", 2, 3, ProblemKind.reordered),
        ("inc-aaaa000000000001", 3, 2, ProblemKind.reordered),
    ]


def test_a_redelivered_event_is_counted_not_a_problem() -> None:
    # A worker killed after sending seq 2..3 and before persisting sends them again.
    events = build(AuditChain())
    redelivered = [*events[:3], events[1], events[2], *events[3:]]
    raw = [e.model_dump_json().encode() for e in redelivered]
    for report in (verify(redelivered), verify(redelivered, raw=raw)):
        assert report.ok and report.redeliveries == 2 and report.events == 7


def test_a_different_event_with_a_seen_seq_is_a_duplicate_problem() -> None:
    events = build(AuditChain())
    other = events[2].model_copy(update={"reason": "forged"})
    other = other.model_copy(update={"hash": event_hash(other)})  # re-hashed: not "altered"
    report = verify([*events, other])
    assert kinds(report) == [("inc-aaaa000000000001", 3, 5, ProblemKind.duplicate)]
    assert report.redeliveries == 0


def test_a_redelivery_must_be_byte_identical() -> None:
    # Same content and hash, other bytes (key order): not what the pipeline sends again.
    events = build(AuditChain())
    raw = [e.model_dump_json().encode() for e in events]
    reordered_keys = json.dumps(dict(reversed(json.loads(raw[2]).items()))).encode()
    report = verify([*events, events[2]], raw=[*raw, reordered_keys])
    assert kinds(report) == [("inc-aaaa000000000001", 3, 5, ProblemKind.duplicate)]


def test_truncation_needs_the_writers_heads() -> None:
    chain = AuditChain()
    events = build(chain)
    assert verify(events[:3]).ok  # indistinguishable without the heads
    report = verify(events[:3], heads=chain.heads)
    assert kinds(report) == [("inc-aaaa000000000001", 5, -1, ProblemKind.truncated)]
    assert verify(events, heads=chain.heads).ok
    assert kinds(verify([], heads=chain.heads)) == [
        ("inc-aaaa000000000001", 5, -1, ProblemKind.truncated)
    ]


def test_every_problem_is_listed_across_incidents() -> None:
    chain = AuditChain()
    a = build(chain, "inc-a")
    b = build(chain, "inc-b")
    a[4] = a[4].model_copy(update={"to_state": IncidentState.open})
    del b[0]
    report = verify(a + b)
    assert kinds(report) == [
        ("inc-a", 5, 4, ProblemKind.altered),
        ("inc-b", 1, 5, ProblemKind.dropped),
    ]
    assert report.incidents == 2 and report.events == 9


def test_first_event_must_start_from_genesis() -> None:
    events = build(AuditChain())
    forged = events[0].model_copy(update={"prev_hash": "f" * 64})
    events[0] = forged.model_copy(update={"hash": event_hash(forged)})
    assert kinds(verify(events)) == [
        ("inc-aaaa000000000001", 1, 0, ProblemKind.broken_link),
        ("inc-aaaa000000000001", 2, 1, ProblemKind.broken_link),
    ]


def test_record_turns_a_transition_into_the_next_event() -> None:
    from pipeline.models import IncidentUpdate
    from pipeline.rules.lifecycle import Transition, apply
    from tests.unit.rules.detect_world import NANJING_EAST, topology
    from tests.unit.rules.incident_world import make

    inc = make()
    update = IncidentUpdate(
        update_id="u-1",
        incident_id=inc.incident_id,
        action=IncidentAction.dispatch,
        unit=NANJING_EAST,
        at=T0 + timedelta(minutes=3),
        note="crew 7",
    )
    transition = apply(inc, update, topology())
    assert isinstance(transition, Transition)
    chain = AuditChain()
    event = chain.record(transition)
    assert (event.incident_id, event.seq, event.action, event.actor) == (
        inc.incident_id,
        1,
        IncidentAction.dispatch,
        NANJING_EAST,
    )
    assert (event.from_state, event.to_state, event.reason) == (
        IncidentState.open,
        IncidentState.dispatched,
        "crew 7",
    )
    assert event.at == T0 + timedelta(minutes=3) and event.hash == event_hash(event)
    # The unit's update id and its own time are in the trail, and under the hash.
    assert (event.update_id, event.sent_at) == ("u-1", T0 + timedelta(minutes=3))
    forged = event.model_copy(update={"update_id": "u-9"})
    assert kinds(verify([forged])) == [(inc.incident_id, 1, 0, ProblemKind.altered)]


@st.composite
def chains(draw: st.DrawFn) -> list[AuditEvent]:
    chain = AuditChain()
    events: list[AuditEvent] = []
    n_incidents = draw(st.integers(1, 3))
    for i in range(draw(st.integers(2, 12))):
        iid = f"inc-{draw(st.integers(0, n_incidents - 1))}"
        action, before, after = STEPS[i % len(STEPS)]
        events.append(
            chain.append(
                incident_id=iid,
                action=action,
                actor=draw(st.sampled_from(["system", "310101"])),
                at=T0 + timedelta(seconds=i),
                from_state=before,
                to_state=after,
                reason=draw(st.none() | st.text(max_size=5)),
            )
        )
    return events


@settings(max_examples=150, deadline=None)
@given(chains(), st.data())
def test_any_alteration_drop_or_reorder_is_detected(
    events: list[AuditEvent], data: st.DataObject
) -> None:
    assert verify(events).ok
    tampered = list(events)
    how = data.draw(st.sampled_from(["alter", "rehash", "drop", "swap"]))
    i = data.draw(st.integers(0, len(events) - 1))
    if how in ("alter", "rehash"):
        forged = events[i].model_copy(update={"actor": events[i].actor + "!"})
        if how == "rehash":
            forged = forged.model_copy(update={"hash": event_hash(forged)})
            # Re-hashing only hides the change when nothing follows it in its chain.
            later = [e for e in events[i + 1 :] if e.incident_id == events[i].incident_id]
            if not later:
                return
        tampered[i] = forged
    elif how == "drop":
        later = [e for e in events[i + 1 :] if e.incident_id == events[i].incident_id]
        del tampered[i]
        if not later:  # dropping a chain's newest event needs the heads to show
            heads = {e.incident_id: ChainHead(e.seq, e.hash) for e in events}
            assert not verify(tampered, heads=heads).ok
            return
    else:
        same = [j for j, e in enumerate(events) if e.incident_id == events[i].incident_id]
        if len(same) < 2:
            return
        j = data.draw(st.sampled_from([j for j in same if j != i]))
        tampered[i], tampered[j] = tampered[j], tampered[i]
    assert not verify(tampered).ok
