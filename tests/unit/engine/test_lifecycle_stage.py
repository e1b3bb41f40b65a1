"""The lifecycle stage: signed updates, replies, deduplication that survives a restart,
the receive time, quiet incident topics and reopening, all deterministic."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.engine.emit import Emit, Record
from pipeline.engine.stages import LifecycleStage
from pipeline.models import Incident, IncidentAction, IncidentEvents, Severity, UpdateReply
from pipeline.topology import Topology, parse_topology
from tests.support.units import KEYS_FILE, Units, update_value
from tests.unit.rules.detect_world import BASE, CITY, HUANGPU, NANJING_EAST, T0, WAITAN
from tests.unit.rules.incident_world import make

STREET_UNIT = f"{NANJING_EAST}/urban-management"
UNITS = Units([STREET_UNIT, HUANGPU, WAITAN, CITY])
INCIDENT = make().incident_id
P = "cityops.test."


def world(tmp_path: Path, **incidents: Any) -> Topology:
    UNITS.write(tmp_path)
    data = copy.deepcopy(BASE)
    data["incidents"] = {"unit_keys": KEYS_FILE, **incidents}
    return parse_topology(data, tmp_path)


def event_record(incident: Incident, offset: int) -> Record:
    value = IncidentEvents([incident]).model_dump_json().encode()
    return Record(f"{P}incidents.events", incident.incident_id.encode(), value, (), 0, offset)


def detected(action: str, count: int, minute: float, severity: str = "yellow") -> Incident:
    seen = make(count=count)
    at = T0 + timedelta(minutes=minute)
    evidence = seen.evidence.model_copy(update={"count": count, "last_at": at})
    changes = {"updated_at": at, "evidence": evidence, "severity": Severity(severity)}
    return seen.model_copy(update={**changes, "last_action": IncidentAction(action)})


def update_record(
    update_id: str,
    action: str,
    offset: int,
    *,
    unit: str = STREET_UNIT,
    signer: str | None = STREET_UNIT,
    received: datetime = T0 + timedelta(minutes=20),
    at: datetime | None = None,
    incident_id: str = INCIDENT,
) -> Record:
    value = update_value(
        update_id, incident_id, action, unit, at or received - timedelta(seconds=2)
    )
    headers = UNITS.signed(value, signer)[1] if signer else []
    stamp = int(received.timestamp() * 1000)
    return Record(f"{P}incidents.updates", incident_id.encode(), value, headers, 0, offset, stamp)


def opened(topology: Topology, backing: dict[str, Any] | None = None) -> LifecycleStage:
    stage = LifecycleStage(topology, {} if backing is None else backing)
    stage.on_incident_events(event_record(detected("open", 3, 0), 0))
    return stage


def replies(emits: list[Emit]) -> list[UpdateReply]:
    return [UpdateReply.model_validate_json(e.value) for e in emits if e.kind == "reply"]


def topics(emits: list[Emit]) -> list[str]:
    return [e.topic.removeprefix(P) for e in emits]


def test_an_accepted_update_is_published_replied_and_audited_at_its_receive_time(
    tmp_path: Path,
) -> None:
    stage = opened(world(tmp_path))
    received = T0 + timedelta(minutes=20)
    emits = stage.on_update(update_record("u-1", "acknowledge", 1, received=received))
    assert topics(emits) == [
        "incidents.city", f"incidents.district.{HUANGPU}", f"incidents.street.{NANJING_EAST}",
        "incidents.audit", "incidents.replies",
    ]  # fmt: skip
    (reply,) = replies(emits)
    assert (reply.update_id, reply.accepted, reply.state, reply.version) == (
        "u-1", True, "acknowledged", 2,
    )  # fmt: skip
    assert reply.received_at == received and emits[-1].key == INCIDENT.encode()
    incident = Incident.model_validate_json(emits[0].value)
    assert incident.updated_at == received  # the broker's time, not the sender's `at`
    audit = orjson.loads(emits[3].value)
    assert audit["at"] == "2026-03-01T08:20:00Z" and audit["sent_at"] == "2026-03-01T08:19:58Z"
    assert audit["update_id"] == "u-1" and audit["actor"] == STREET_UNIT


REFUSED = [
    ("unsigned", {"signer": None}),
    ("bad_signature", {"signer": HUANGPU}),  # signed with another unit's key
    ("unknown_unit", {"unit": f"{HUANGPU}/impostor", "signer": HUANGPU}),
    ("unknown_unit", {"unit": "310104", "signer": HUANGPU}),  # a real area, no key
    ("unit_outside_area", {"unit": WAITAN, "signer": WAITAN}),  # a sibling street
    ("clock_skew", {"at": T0 + timedelta(minutes=40)}),
    ("too_old", {"at": T0 - timedelta(days=2)}),
    ("unknown_incident", {"incident_id": "inc-0000000000000000"}),
]


@pytest.mark.parametrize(("reason", "change"), REFUSED, ids=[r for r, _ in REFUSED])
def test_a_refused_update_gets_a_reply_with_its_id_keyed_by_incident(
    tmp_path: Path, reason: str, change: dict[str, Any]
) -> None:
    stage = opened(world(tmp_path))
    record = update_record("u-7", "acknowledge", 1, **change)
    emits = stage.on_update(record)
    assert topics(emits) == ["incidents.replies", "deadletter"]
    (reply,) = replies(emits)
    assert (reply.update_id, reply.accepted, reply.reason) == ("u-7", False, reason)
    assert emits[0].key == emits[1].key == record.key
    assert orjson.loads(emits[1].value)["reason"] == reason
    assert stage.incident(INCIDENT).state == "open"  # type: ignore[union-attr]


def test_the_city_unit_may_act_and_an_invalid_transition_is_refused(tmp_path: Path) -> None:
    stage = opened(world(tmp_path))
    (refused,) = replies(stage.on_update(update_record("u-1", "resolve", 1)))
    assert (refused.reason, refused.state, refused.version) == ("invalid_transition", "open", 1)
    (ok,) = replies(stage.on_update(update_record("u-2", "dispatch", 2, unit=CITY, signer=CITY)))
    assert ok.accepted and ok.state == "dispatched"


def test_unreadable_updates_reply_when_their_ids_can_be_read(tmp_path: Path) -> None:
    stage = opened(world(tmp_path))
    bad = orjson.dumps({"update_id": "u-3", "incident_id": INCIDENT, "action": "escalate"})
    emits = stage.on_update(Record(f"{P}incidents.updates", None, bad, (), 0, 1, 0))
    (reply,) = replies(emits)
    assert (reply.update_id, reply.reason) == ("u-3", "schema_violation")
    emits = stage.on_update(Record(f"{P}incidents.updates", None, b"{broken", (), 0, 2, 0))
    assert [(e.kind, e.reason) for e in emits] == [("deadletter", "invalid_json")]


def test_a_replayed_update_is_a_duplicate_even_after_a_restart(tmp_path: Path) -> None:
    topology = world(tmp_path)
    backing: dict[str, Any] = {}
    stage = opened(topology, backing)
    first = update_record("u-1", "acknowledge", 1)
    assert replies(stage.on_update(first))[0].accepted
    stage.persist()
    restarted = LifecycleStage(topology, backing)
    assert restarted.on_update(first) == []  # a redelivery of an applied offset: skipped
    replay = update_record("u-1", "acknowledge", 2, received=T0 + timedelta(minutes=21))
    (reply,) = replies(restarted.on_update(replay))
    assert (reply.accepted, reply.reason) == (False, "duplicate")
    assert restarted.incident(INCIDENT).version == 2  # type: ignore[union-attr]


def test_a_forged_update_does_not_burn_the_units_id(tmp_path: Path) -> None:
    stage = opened(world(tmp_path))
    forged = update_record("u-5", "acknowledge", 1, signer=HUANGPU)
    assert replies(stage.on_update(forged))[0].reason == "bad_signature"
    assert replies(stage.on_update(update_record("u-5", "acknowledge", 2)))[0].accepted


def test_update_ids_are_forgotten_only_once_too_old_to_replay(tmp_path: Path) -> None:
    stage = opened(world(tmp_path, max_update_age="1h"))
    stage.on_update(update_record("u-1", "comment", 1))
    later = T0 + timedelta(hours=3)
    stage.on_update(update_record("u-2", "comment", 2, received=later))
    assert set(stage.states.peek(INCIDENT).update_ids) == {"u-2"}  # type: ignore[union-attr]
    old = update_record("u-1", "comment", 3, received=later, at=T0 + timedelta(minutes=20))
    assert replies(stage.on_update(old))[0].reason == "too_old"


def test_a_redelivered_record_gives_byte_identical_outputs(tmp_path: Path) -> None:
    topology = world(tmp_path)
    backing: dict[str, Any] = {}
    opened(topology, backing).persist()
    snapshot = copy.deepcopy(backing)
    records = [
        update_record("u-1", "acknowledge", 1),
        update_record("u-2", "close", 2),  # refused: a dead letter and a reply
        event_record(detected("evidence", 9, 12), 1),
    ]
    runs = []
    for state in (backing, snapshot):
        stage = LifecycleStage(topology, state)
        out = [stage.on_update(r) if "updates" in r.topic else stage.on_incident_events(r)
               for r in records]  # fmt: skip
        runs.append(out)
    assert runs[0] == runs[1]


def test_evidence_reaches_the_incident_topics_at_most_once_per_interval(tmp_path: Path) -> None:
    stage = LifecycleStage(world(tmp_path, evidence_interval="5m"), {})
    emits = stage.on_incident_events(event_record(detected("open", 3, 0), 0))
    for n in range(1, 25):  # evidence every 30 s for 12 minutes
        emits += stage.on_incident_events(event_record(detected("evidence", 3 + n, n / 2), n))
    emits += stage.on_incident_events(event_record(detected("upgrade", 30, 12.5, "red"), 30))
    city = [Incident.model_validate_json(e.value) for e in emits if e.topic.endswith(".city")]
    assert [(i.last_action, i.evidence.count) for i in city] == [
        ("open", 3), ("evidence", 13), ("evidence", 23), ("upgrade", 30),
    ]  # fmt: skip
    assert sum(e.kind == "audit" for e in emits) == 26  # the audit keeps every change


def test_a_worsening_incident_a_unit_resolved_reopens_and_counts_as_open(tmp_path: Path) -> None:
    stage = opened(world(tmp_path))
    stage.on_update(update_record("u-1", "acknowledge", 1))
    stage.on_update(update_record("u-2", "resolve", 2))
    assert list(stage.open_incidents()) == []
    assert stage.on_incident_events(event_record(detected("auto_resolve", 4, 1), 1)) == []
    same = stage.on_incident_events(event_record(detected("evidence", 5, 2), 2))
    assert [e.kind for e in same] == ["audit"]  # kept, still resolved; quiet (< 5 min)
    assert stage.incident(INCIDENT).state == "resolved"  # type: ignore[union-attr]
    emits = stage.on_incident_events(event_record(detected("upgrade", 6, 3, "red"), 3))
    (reopened,) = stage.open_incidents()
    assert (reopened.state, reopened.severity, reopened.reopened) == ("open", "red", 1)
    city = Incident.model_validate_json(emits[0].value)
    assert (city.last_action, city.state) == ("reopen", "open")


def _run(stage: LifecycleStage, records: list[Record | datetime]) -> list[Emit]:
    """Feed records in order; a datetime is an SLA timer tick at that wall-clock time."""
    emits: list[Emit] = []
    for r in records:
        if isinstance(r, datetime):
            emits += stage.check_deadlines(r)
        elif "updates" in r.topic:
            emits += stage.on_update(r)
        else:
            emits += stage.on_incident_events(r)
    return emits


def _versions(emits: list[Emit]) -> dict[tuple[str, bytes | None, int], set[bytes]]:
    """Every output's distinct bytes per (topic, incident, version or audit seq)."""
    seen: dict[tuple[str, bytes | None, int], set[bytes]] = {}
    for e in emits:
        if e.kind in ("incident", "audit"):
            doc = orjson.loads(e.value)
            seen.setdefault((e.topic, e.key, doc.get("version", doc.get("seq"))), set()).add(
                e.value
            )
    return seen


def test_a_replayed_batch_with_a_missed_sla_deadline_gives_byte_identical_outputs(
    tmp_path: Path,
) -> None:
    # The worker sent a batch's outputs and was killed before its state was persisted: a
    # fresh stage restored from the state before the batch replays it, hours later.
    topology = world(tmp_path)
    backing: dict[str, Any] = {}
    opened(topology, backing).persist()  # yellow: ack due at T0 + 2h
    before = copy.deepcopy(backing)
    batch: list[Record | datetime] = [
        event_record(detected("evidence", 9, 12), 1),
        update_record("u-1", "dispatch", 1, received=T0 + timedelta(hours=3)),
        update_record("u-2", "comment", 2, received=T0 + timedelta(hours=3, minutes=5)),
    ]
    first = _run(LifecycleStage(topology, backing), [*batch, T0 + timedelta(hours=6)])
    replay = _run(LifecycleStage(topology, before), [*batch, T0 + timedelta(days=2)])
    assert [(e.topic, e.key, e.value) for e in replay] == [(e.topic, e.key, e.value) for e in first]
    escalations = [orjson.loads(e.value) for e in first if e.kind == "audit"]
    assert [(a["action"], a["at"]) for a in escalations if a["action"] == "escalate"] == [
        ("escalate", "2026-03-01T10:00:00Z"),  # the missed ack deadline, before the dispatch
        ("escalate", "2026-03-01T12:00:00Z"),  # the district's, by the timer
    ]


def test_the_sla_timer_and_a_record_after_the_deadline_agree_in_either_order(
    tmp_path: Path,
) -> None:
    # Run 1: the timer escalated before a dispatch received after the deadline. Replay: the
    # dispatch came first. Each (incident, version) and audit seq still has one value.
    topology = world(tmp_path)
    backing: dict[str, Any] = {}
    opened(topology, backing).persist()
    before = copy.deepcopy(backing)
    dispatch = update_record("u-1", "dispatch", 1, received=T0 + timedelta(hours=3))
    first = _run(LifecycleStage(topology, backing), [T0 + timedelta(hours=2, minutes=1), dispatch])
    replay = _run(LifecycleStage(topology, before), [dispatch, T0 + timedelta(hours=3, minutes=1)])
    merged = _versions(first + replay)
    assert merged and all(len(values) == 1 for values in merged.values())
    assert _versions(first).keys() == _versions(replay).keys()
