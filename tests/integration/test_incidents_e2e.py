"""Incidents end to end through the real broker and a real worker.

Two sensors in two districts breach the PM2.5 rule: exactly one incident each opens, it is
published on the city topic and on its own district's and street's topics and nowhere else,
the unacknowledged one escalates street -> district -> city (SLA shortened to seconds), the
other is acknowledged, resolved and closed through the updates topic (signed by its
units), refused updates are dead-lettered with their reasons, and the audit topic verifies.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from pipeline.kafka.admin import create_topics
from pipeline.models import AuditEvent
from pipeline.rules.audit import verify
from pipeline.topology import Topology, parse_topology
from tests.support.paths import ROOT
from tests.support.units import Units, update_value
from tests.support.worker import TopicWatcher, WorkerProcess, produce, sensor_key

DEMO = ROOT / "topologies" / "demo.yaml"
SLA = {"ack": "2s", "resolve": "1h"}
#: What detection and the SLA timer may add to an incident between a unit's steps.
DETECTION_ACTIONS = {"evidence", "upgrade", "escalate"}


UNITS = Units(["310101", "310101002", "310104", "310104014"])


def _fast_sla_topology(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["sla"] = {severity: dict(SLA) for severity in ("red", "orange", "yellow", "blue")}
    data["incidents"] = {"unit_keys": str(UNITS.write(tmp_path))}
    path = tmp_path / "fast-sla.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, data


def _readings(sensor: str, values: list[float], start: datetime) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"{sensor}-{i}", "sensor_id": sensor, "metric": "pm25",
            "value": value, "unit": "ug/m3",
            "observed_at": (start + timedelta(seconds=5 * i)).isoformat(),
        })
        for i, value in enumerate(values)
    ]  # fmt: skip


def _update(incident_id: str, action: str, unit: str, n: int) -> tuple[bytes, list[Any]]:
    """A signed update record (value, headers)."""
    value = update_value(f"u-{n}", incident_id, action, unit, datetime.now(UTC), f"test step {n}")
    return UNITS.signed(value, unit)


async def _send(bootstrap: str, topic: str, updates: list[tuple[bytes, list[Any]]]) -> None:
    for value, headers in updates:
        key = orjson.loads(value)["incident_id"].encode()
        await produce(bootstrap, topic, [value], headers=headers, key=key)


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["incident_id"] for r in records}


@pytest.mark.integration
async def test_incidents_are_routed_escalated_handled_and_audited(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, data = _fast_sla_topology(tmp_path)
    data["topics"]["prefix"] = topic_prefix
    topology: Topology = parse_topology(data, DEMO.parent)
    await create_topics(kafka_bootstrap, topology.topic_plan())
    name = topology.topics.name
    updates = name("incident_updates")
    watched = [
        s.name for s in topology.topic_plan() if "incidents." in s.name and s.name != updates
    ]
    watched.append(name("deadletter"))
    start = datetime.now(UTC) - timedelta(seconds=70)
    breaching = [
        80.0,
        90.0,
        160.0,
        170.0,
        120.0,
        130.0,
        125.0,
        140.0,
        150.0,
        135.0,
        128.0,
        131.0,
        126.0,
    ]
    await produce(kafka_bootstrap, name("raw_sensors"), [
        *_readings("aq-001", breaching, start), *_readings("aq-002", breaching, start),
    ], key_of=sensor_key)  # fmt: skip

    watcher = TopicWatcher(kafka_bootstrap, watched)
    await watcher.consumer.start()
    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"w-{topic_prefix}",
        env={"CITYOPS_SLA_CHECK_SECONDS": "1"},
    ).start()  # fmt: skip
    try:
        city = name("incidents_city")
        await watcher.until("two incidents", lambda r: len(_ids(r[city])) == 2, worker)
        # Units act once detection has seen the worst (an upgrade after a resolve reopens).
        await watcher.until(
            "both upgraded",
            lambda r: sum(x["last_action"] == "upgrade" for x in r[city]) >= 2,
            worker,
        )
        by_district = {r["areas"]["district"]: r["incident_id"] for r in watcher.records[city]}
        a, b = by_district["310101"], by_district["310104"]

        updates = [
            _update(b, "acknowledge", "310101", 1),  # Huangpu has no authority in Xuhui
            _update(b, "acknowledge", "310104014", 2),
            _update(b, "resolve", "310104014", 3),
            _update(b, "close", "310104", 4),
            _update(a, "close", "310101002", 5),  # not resolved: refused
            _update("inc-0000000000000000", "acknowledge", "310101", 6),
        ]
        await _send(kafka_bootstrap, name("incident_updates"), updates)
        await produce(kafka_bootstrap, name("incident_updates"), [b"{broken"])

        def settled(r: dict[str, list[dict[str, Any]]]) -> bool:
            a_levels = {x["owner_level"] for x in r[city] if x["incident_id"] == a}
            b_states = {x["state"] for x in r[city] if x["incident_id"] == b}
            return "city" in a_levels and "closed" in b_states and len(r[name("deadletter")]) >= 4

        await watcher.until("escalation of A, closing of B, 4 dead letters", settled, worker)
        await asyncio.sleep(2)  # anything late or extra would show up now
        await watcher.drain()
    finally:
        worker.stop()
        await watcher.consumer.stop()

    records = watcher.records
    assert _ids(records[city]) == {a, b}, "exactly one incident per breaching sensor"
    assert _ids(records[name("incidents_district", "310101")]) == {a}
    assert _ids(records[name("incidents_district", "310104")]) == {b}
    assert _ids(records[name("incidents_street", "310101002")]) == {a}
    assert _ids(records[name("incidents_street", "310104014")]) == {b}
    for street in ("310101013", "310101018", "310104011"):
        assert not records[name("incidents_street", street)], f"nothing for street {street}"

    a_history = [x for x in records[city] if x["incident_id"] == a]
    assert [x["owner_level"] for x in a_history if x["last_action"] == "escalate"] == [
        "district", "city",
    ]  # fmt: skip
    actions = [(x["last_action"], x["severity"]) for x in a_history]
    assert actions[0] == ("open", "blue"), actions
    assert ("upgrade", "orange") in actions, actions
    # Detection may still add evidence to B after a unit took it over (its readings and our
    # updates race through different topics): such records repeat the state they are in.
    b_history = [(x["state"], x["last_action"]) for x in records[city] if x["incident_id"] == b]
    b_states = [
        state for i, (state, _) in enumerate(b_history) if i == 0 or state != b_history[i - 1][0]
    ]
    assert b_states[-3:] == ["acknowledged", "resolved", "closed"], b_history
    repeats = {
        action for i, (state, action) in enumerate(b_history) if i and state == b_history[i - 1][0]
    }
    assert repeats <= DETECTION_ACTIONS, b_history

    reasons = sorted(d["reason"] for d in records[name("deadletter")])
    assert reasons == sorted([
        "unit_outside_area", "invalid_transition", "unknown_incident", "invalid_json",
    ])  # fmt: skip

    audit = [AuditEvent.model_validate(x) for x in records[name("audit")]]
    report = verify(audit)
    assert report.ok, report.problems
    b_actions = [e.action for e in audit if e.incident_id == b]
    unit_actions = [action for action in b_actions if action not in DETECTION_ACTIONS]
    assert b_actions[0] == "open" and unit_actions[-3:] == ["acknowledge", "resolve", "close"]

    # What an auditor runs: the CLI reads the whole audit topic and proves the chains.
    env = {**os.environ, "CITYOPS_TOPIC_PREFIX": topic_prefix, "COLUMNS": "200"}
    verified = subprocess.run(
        [sys.executable, "-m", "pipeline", "audit", "verify", "-t", str(path),
         "--bootstrap", kafka_bootstrap],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    counted = re.search(r"(\d+) events, 0 problems", verified.stdout)
    # The worker may have added a transition after the watcher's last read: at least ours.
    assert counted and int(counted.group(1)) >= len(audit), verified.stdout
