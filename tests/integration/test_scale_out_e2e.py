"""Two workers in one consumer group produce exactly the incidents one process computes.

Detection state is keyed by district, so each district's readings and state live in one
partition whichever worker owns it; incident ids are deterministic, so the set of
incidents is the same as the pure stages compute for the same input.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from pipeline.engine.local import InputRecord, run
from pipeline.kafka.admin import create_topics
from pipeline.topology import parse_topology
from tests.support.paths import ROOT
from tests.support.worker import WorkerProcess, consume_until, produce, sensor_key

DEMO = ROOT / "topologies" / "demo.yaml"
SENSORS = ("aq-001", "aq-002", "aq-003")


def _readings(start: datetime) -> list[bytes]:
    out = []
    for i in range(24):
        for n, sensor in enumerate(SENSORS):
            # each sensor breaches, clears and breaches again: two incidents per sensor
            value = 160.0 if (i // 6) % 2 == 0 else 20.0
            out.append(orjson.dumps({
                "event_id": f"{sensor}-{i}", "sensor_id": sensor, "metric": "pm25",
                "value": value + n, "unit": "ug/m3",
                "observed_at": (start + timedelta(seconds=5 * i)).isoformat(),
            }))  # fmt: skip
    return out


def _offline_incidents(data: dict[str, Any], messages: list[bytes]) -> set[str]:
    """What one process computes with the worker's own pipeline (the local engine)."""
    topology = parse_topology(data, DEMO.parent)
    raw = topology.topics.name("raw_sensors")
    result = run(topology, [InputRecord(n, raw, None, value) for n, value in enumerate(messages)])
    city = result.outputs[topology.topics.name("incidents_city")]
    return {orjson.loads(value)["incident_id"] for value in city}


@pytest.mark.integration
async def test_two_workers_in_one_group_give_the_incidents_of_one(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["detection"] = {"allowed_lateness": "0s"}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    data["topics"]["prefix"] = topic_prefix
    topology = parse_topology(data, DEMO.parent)
    await create_topics(kafka_bootstrap, topology.topic_plan())
    messages = _readings(datetime.now(UTC) - timedelta(minutes=5))
    expected = _offline_incidents(data, messages)
    assert len(expected) == 2 * len(SENSORS)

    group = f"scale-{topic_prefix}"
    workers = [
        WorkerProcess(path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=group,
                      instance=f"-{n}")
        for n in range(2)
    ]  # fmt: skip
    for worker in workers:
        worker.start()
    try:
        await asyncio.sleep(8)  # both have joined the group before the data arrives
        assert all(w.alive() for w in workers), workers[0].report() + workers[1].report()
        await produce(kafka_bootstrap, topology.topics.name("raw_sensors"), messages,
                      key_of=sensor_key)  # fmt: skip
        city = topology.topics.name("incidents_city")
        found = await consume_until(kafka_bootstrap, [city], 4 * len(expected), settle=5.0,
                                    timeout=120, worker=workers[0])  # fmt: skip
    finally:
        for worker in workers:
            worker.stop()
    got = {orjson.loads(value)["incident_id"] for _, value in found[city]}
    assert got == expected
    for worker in workers:  # the work was shared: each worker was given partitions
        assert "Setting newly assigned partitions {" in worker.log(), worker.report()


@pytest.mark.integration
async def test_a_worker_answers_unavailable_while_a_join_rebalances_it(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """While a second worker joins, the first one's lifecycle table is being handed over:
    `/incidents` answers 503 with Retry-After (not a partial list), then 200 again."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["topics"]["prefix"] = topic_prefix
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    await create_topics(kafka_bootstrap, parse_topology(data, DEMO.parent).topic_plan())
    group = f"join-{topic_prefix}"
    first, second = (
        WorkerProcess(path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=group,
                      instance=f"-{n}")
        for n in range(2)
    )  # fmt: skip
    statuses: list[tuple[int, str | None]] = []

    def ask() -> None:
        status, headers, _ = first.answer("/incidents?limit=1")
        statuses.append((status, headers.get("Retry-After")))

    try:
        first.start()
        await first.wait_ready()
        second.start()
        deadline = time.monotonic() + 90
        while not (second.is_ready() and statuses and statuses[-1][0] == 200):
            assert first.alive() and second.alive(), first.report() + second.report()
            assert time.monotonic() < deadline, f"{statuses[-5:]}\n{first.report()}"
            await asyncio.to_thread(ask)
            await asyncio.sleep(0.02)
    finally:
        second.stop()
        first.stop()
    assert (503, "2") in statuses, sorted(set(statuses))
    assert statuses[0] == (200, None) and statuses[-1] == (200, None)
    assert {status for status, _ in statuses} == {200, 503}, sorted(set(statuses))
