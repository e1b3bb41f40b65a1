"""The redelivery contract through the real broker: a worker SIGKILLed three times
mid-stream, and restarted each time, leaves exactly one byte value per
(incident_id, version) on every incident topic and per (incident_id, seq) on the audit
topic, and `cityops audit verify` passes (counting the redeliveries apart).

The SLAs are seconds long and the timer ticks every second, so escalations by the timer
race the kills too. No unit updates: their interleaving with detection's events across
two topics is the documented limit of the contract (docs/incidents.md, "Redelivery").
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from pipeline.cli.audit import read_topic
from pipeline.engine.worker.failure import EXIT_BATCH_FAILED
from pipeline.engine.worker.intake import intake_group
from pipeline.kafka.admin import list_topics
from pipeline.topology import Topology
from tests.support.demo import demo_data, deploy
from tests.support.worker import WorkerProcess, committed_and_end, produce, sensor_key

SENSORS = ("aq-001", "aq-002", "aq-003")
CYCLE = (160.0, 170.0, 260.0, 270.0, 30.0, 30.0)  # open, evidence, upgrade, clear
KILLS = 3
RESTARTS: list[int] = []  # the supervisor's restarts after a failed batch (exit status)


def cycle(number: int) -> list[bytes]:
    """One breach-and-clear cycle of every sensor, stamped just before now."""
    start = datetime.now(UTC) - timedelta(seconds=len(CYCLE) + 1)
    return [
        orjson.dumps({
            "event_id": f"r{number}-{sensor}-{i}", "sensor_id": sensor, "metric": "pm25",
            "value": value, "unit": "ug/m3",
            "observed_at": (start + timedelta(seconds=i)).isoformat(),
        })
        for i, value in enumerate(CYCLE)
        for sensor in SENSORS
    ]  # fmt: skip


async def stream(bootstrap: str, topic: str, stop: asyncio.Event) -> int:
    """The input, a cycle every 0.1 s while the worker is killed and restarted, until
    `stop`; how many cycles."""
    number = 1
    while not stop.is_set():
        await produce(bootstrap, topic, cycle(number), key_of=sensor_key)
        number += 1
        await asyncio.sleep(0.1)
    return number


async def end_total(bootstrap: str, topology: Topology, name: str) -> int:
    group = f"probe-{time.monotonic_ns()}"
    return (
        await committed_and_end(
            bootstrap, group, topology.topics.name(name), topology.topics.partitions
        )
    )[1]


def supervise(worker: WorkerProcess) -> None:
    """Play the supervisor: a worker that exited with EXIT_BATCH_FAILED (a batch it could
    not send, e.g. a broker error under load: it exits unacknowledged so that a restart
    replays the batch) is restarted, as Kubernetes or compose would; any other exit fails."""
    if worker.alive():
        return
    code = worker.process.returncode if worker.process else None
    assert code == EXIT_BATCH_FAILED, f"exit {code}\n{worker.report()}"
    RESTARTS.append(code)
    assert len(RESTARTS) <= 3, worker.report()
    worker.start()


async def kill_mid_stream(
    worker: WorkerProcess, bootstrap: str, topology: Topology, rng: random.Random
) -> None:
    """Once the restarted worker writes to the audit topic again, SIGKILL it a moment later
    (the input keeps coming: it is always in the middle of something)."""
    before = await end_total(bootstrap, topology, "audit")
    deadline = time.monotonic() + 90
    while await end_total(bootstrap, topology, "audit") == before:
        supervise(worker)
        assert time.monotonic() < deadline, worker.report()
        await asyncio.sleep(0.1)
    await asyncio.sleep(rng.uniform(0.5, 2.5))
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL


async def caught_up(bootstrap: str, worker: WorkerProcess, topology: Topology) -> None:
    """Until the worker's group committed everything of its inputs, twice in a row."""
    worker_id = worker.args[-1]
    groups = {"raw_sensors": intake_group(worker_id), "readings": worker_id}
    groups["incident_events"] = worker_id
    names = tuple(groups)
    deadline, steady = time.monotonic() + 180, 0
    offsets: list[tuple[int, int]] = []
    while steady < 2:
        supervise(worker)
        assert time.monotonic() < deadline, f"{names}: {offsets}\n{worker.report()}"
        offsets = [
            await committed_and_end(
                bootstrap, groups[n], topology.topics.name(n), topology.topics.partitions
            )
            for n in names
        ]
        steady = steady + 1 if all(c == e for c, e in offsets) else 0
        await asyncio.sleep(2.0)


@pytest.mark.integration
async def test_three_kills_leave_one_value_per_incident_version_and_a_verified_audit(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = demo_data()
    data["sla"] = {sev: {"ack": "2s", "resolve": "6s"} for sev in data["sla"]}
    path, topology = await deploy(
        data, bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    raw = topology.topics.name("raw_sensors")
    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"kill-{topic_prefix}",
        # Passes of a few messages (see agents.passes): kills fall between them too.
        env={"CITYOPS_SLA_CHECK_SECONDS": "1", "CITYOPS_PASS_MAX_BYTES": "4000"},
    )  # fmt: skip
    rng = random.Random(16)
    # The first cycle before the worker starts: new topics get their leaders meanwhile.
    await produce(kafka_bootstrap, raw, cycle(0), key_of=sensor_key)
    stop = asyncio.Event()
    feeding = asyncio.create_task(stream(kafka_bootstrap, raw, stop))
    try:
        for _ in range(KILLS):
            worker.start()
            await kill_mid_stream(worker, kafka_bootstrap, topology, rng)
        worker.start()
        await asyncio.sleep(5)
        stop.set()
        cycles = await feeding
        await caught_up(kafka_bootstrap, worker, topology)
        await asyncio.sleep(3)  # the SLA timer's last escalations
    finally:
        feeding.cancel()
        worker.stop()

    incident_topics = [
        name
        for name in await list_topics(kafka_bootstrap, topology.topics.prefix + "incidents.")
        if name.rsplit(".", 1)[-1] not in ("events", "updates", "replies")
        and not name.endswith(".audit")
    ]
    values: dict[tuple[str, str, int], set[bytes]] = defaultdict(set)
    copies = 0
    for topic in [*incident_topics, topology.topics.name("audit")]:
        for record in await read_topic(kafka_bootstrap, topic):
            doc = orjson.loads(record.value)
            number = doc["seq"] if topic.endswith(".audit") else doc["version"]
            key = (topic, doc["incident_id"], number)
            copies += key in values
            values[key].add(record.value)
    conflicts = {key: len(v) for key, v in values.items() if len(v) > 1}
    assert values and not conflicts, conflicts
    actions = {orjson.loads(v)["action"] for k, vs in values.items() for v in vs if "audit" in k[0]}
    assert {"open", "upgrade", "auto_resolve", "escalate"} <= actions, actions

    verified = subprocess.run(
        [sys.executable, "-m", "pipeline", "audit", "verify", "-t", str(path),
         "--bootstrap", kafka_bootstrap, "--json"],
        env={**os.environ, "CITYOPS_TOPIC_PREFIX": topic_prefix},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    audit_copies = sum(1 for key in values if key[0].endswith(".audit"))
    assert report["ok"] and report["events"] - report["redeliveries"] == audit_copies
    audit = report["redeliveries"]
    print(f"{cycles} cycles; redelivered {copies} (audit {audit}); restarts {RESTARTS}")  # noqa: T201
