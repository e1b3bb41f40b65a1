"""The whole city through the real broker: 215 street topics, 30 streets breaching at once.

The Shanghai sample (16 districts, 215 streets/towns, 6,395 committees, the H3 grid, its
400 sensors) with the SLA shortened to seconds and only the per-sensor PM2.5 rule (so every
incident is a sensor's, owned by its street). Thirty streets are chosen at random (seeded)
across all 16 districts, one air sensor in each breaches: each incident must appear on
exactly its street's topic, its district's topic and the city topic, on no other of the
232 incident topics, carry the sensor's grid cell, and, never acknowledged, escalate
street -> district -> city. The time to create the city's topics is printed (`-s`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import orjson
import pytest
import yaml

from bench.variants import load_absolute
from pipeline.kafka.admin import create_topics
from pipeline.models import AreaLevel
from pipeline.topology import Sensor, Topology, load_topology
from tests.support.paths import SHANGHAI
from tests.support.worker import TopicWatcher, WorkerProcess, produce, sensor_key

STREETS = 30
SEED = 1402
SLA = {"ack": "2s", "resolve": "1h"}
BREACHING = [80.0, 90.0, 100.0, 95.0]  # above the blue level (75) three times running


def _derived(tmp_path: Path, prefix: str) -> Path:
    """The sample with a test prefix, seconds-long SLAs and only the per-sensor PM2.5 rule."""
    data = load_absolute(SHANGHAI)
    data["topics"]["prefix"] = prefix
    data["sla"] = {severity: dict(SLA) for severity in ("red", "orange", "yellow", "blue")}
    data["rules"] = [rule for rule in data["rules"] if rule["id"] == "pm25"]
    path = tmp_path / "full-city.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _choose(topology: Topology) -> dict[str, Sensor]:
    """Street -> one of its air sensors, for 30 streets covering all 16 districts."""
    air: dict[str, list[Sensor]] = defaultdict(list)
    for sensor in topology.sensors:
        if "pm25" in sensor.metrics:
            air[topology.admin_codes(sensor.area)[AreaLevel.street]].append(sensor)
    rng = random.Random(SEED)
    by_district: dict[str, list[str]] = defaultdict(list)
    for street in sorted(air):
        by_district[street[:6]].append(street)
    chosen = [rng.choice(streets) for _, streets in sorted(by_district.items())]
    rest = sorted(set(air) - set(chosen))
    chosen += rng.sample(rest, STREETS - len(chosen))
    return {street: rng.choice(air[street]) for street in chosen}


def _readings(sensor: Sensor, start: datetime) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"{sensor.id}-{i}", "sensor_id": sensor.id, "metric": "pm25",
            "value": value, "unit": "ug/m3",
            "observed_at": (start + timedelta(seconds=5 * i)).isoformat(),
        })
        for i, value in enumerate(BREACHING)
    ]  # fmt: skip


@pytest.mark.integration
async def test_thirty_streets_across_the_city_route_and_escalate_exactly(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path = _derived(tmp_path, topic_prefix)
    topology = load_topology(path)
    assert len(topology.areas_at(AreaLevel.street)) == 215
    name = topology.topics.name
    plan = topology.topic_plan()
    started = time.monotonic()
    report = await create_topics(kafka_bootstrap, plan)
    print(f"\ncreated {len(report.created)} topics in {time.monotonic() - started:.1f} s")
    assert len(report.created) == len(plan) == 10 + 16 + 215  # fixed kinds, per area

    chosen = _choose(topology)
    assert len(chosen) == STREETS
    assert {street[:6] for street in chosen} == {
        a.code for a in topology.areas_at(AreaLevel.district)
    }
    incident_topics = [s.name for s in plan if ".incidents." in s.name]
    incident_topics.remove(name("incident_updates"))
    incident_topics.remove(name("incident_replies"))
    incident_topics.remove(name("incident_events"))
    incident_topics.remove(name("audit"))
    assert len(incident_topics) == 1 + 16 + 215

    start = datetime.now(UTC) - timedelta(seconds=60)
    values = [value for sensor in chosen.values() for value in _readings(sensor, start)]
    await produce(kafka_bootstrap, name("raw_sensors"), values, key_of=sensor_key)
    watcher = TopicWatcher(kafka_bootstrap, incident_topics)
    await watcher.consumer.start()
    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"w-{topic_prefix}",
        env={"CITYOPS_SLA_CHECK_SECONDS": "1"},
    ).start()  # fmt: skip
    city = name("incidents_city")

    def escalated(records: dict[str, list[dict[str, Any]]]) -> bool:
        top = {(r["incident_id"], r["owner_level"]) for r in records[city]}
        return len({i for i, level in top if level == "city"}) == STREETS

    try:
        await watcher.until("30 incidents at the city level", escalated, worker, timeout=180)
        await asyncio.sleep(2)  # anything late or extra would show up now
        await watcher.drain()
    finally:
        worker.stop()
        await watcher.consumer.stop()

    seen: dict[str, set[str]] = defaultdict(set)  # incident -> topics it appeared on
    for topic, records in watcher.records.items():
        for record in records:
            seen[record["incident_id"]].add(topic)
    assert len(seen) == STREETS, "exactly one incident per breaching sensor"
    latest = {r["incident_id"]: r for r in watcher.records[city]}
    for incident_id, incident in latest.items():
        street = incident["areas"]["street"]
        sensor = chosen[street]
        assert incident["subject"] == sensor.id
        assert incident["areas"]["district"] == street[:6]
        assert incident["areas"]["grid"] == h3.latlng_to_cell(sensor.lat, sensor.lon, 9)
        assert seen[incident_id] == {
            city,
            name("incidents_district", street[:6]),
            name("incidents_street", street),
        }, incident_id
        history = [r for r in watcher.records[city] if r["incident_id"] == incident_id]
        escalations = [r["owner_level"] for r in history if r["last_action"] == "escalate"]
        assert history[0]["owner_level"] == "street"
        assert escalations == ["district", "city"], (incident_id, escalations)
    quiet = set(incident_topics) - {t for topics in seen.values() for t in topics}
    assert len(quiet) == len(incident_topics) - 1 - 30 - len({s[:6] for s in chosen})
