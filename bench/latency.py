"""Latency from a raw reading to the incident it opens on a street topic, at a steady rate.

How: a paced stream of simulated readings (no faults, no episodes) at ``rate``, into which
readings of PM2.5 for the Huangpu air sensors (which have streets) are injected in cycles
of three breaches and one clear, so the pm25 rule opens an incident every fourth injected
reading. Both ends use Kafka record timestamps (CreateTime, one host clock): the raw
record of the breaching reading, found through the incident's evidence event ids, and the
incident's record on the street topic.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer

from bench import kafkautil
from bench.runner import Worker
from pipeline.kafka.producer import produce
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology

BREACH, CLEAR = 200.0, 30.0  # pm25 rule: above 75 three times opens, 60 clears


class Raw(NamedTuple):
    topic: str
    key: bytes
    value: bytes


def targets(topology: Topology, district: str = "310101") -> list[tuple[str, str]]:
    """(sensor id, street code) of the district's PM2.5 sensors that have a street."""
    found = []
    for sensor in topology.sensors:
        codes = topology.admin_codes(sensor.area)
        street = codes.get("street")  # type: ignore[call-overload]  # AreaLevel is a StrEnum
        if "pm25" in sensor.metrics and codes.get("district") == district and street:  # type: ignore[call-overload]
            found.append((sensor.id, str(street)))
    return found


def stream(
    topology: Topology, rate: float, sensors: list[str], *, per_second: float, after: float
) -> Iterator[Raw]:
    """Background readings at ``rate``; one injected reading per ``rate / per_second``."""
    sim = Simulator.for_rate(
        topology, rate=rate, seed=2, start=datetime.now(UTC), fault_rate=0.0,
        reports_per_minute=0.0, episodes_per_hour=0.0,
    )  # fmt: skip
    topic = topology.topics.name("raw_sensors")
    own = {s.encode() for s in sensors}
    every = max(1, round(rate / per_second))
    token = uuid.uuid4().hex[:6]
    begin = time.monotonic()
    n = injected = 0
    for event in sim.events():
        if event.key in own and b'"metric":"pm25"' in event.value:
            continue  # the injected readings are these sensors' only PM2.5
        n += 1
        yield Raw(event.topic, event.key, event.value)
        if n % every or time.monotonic() - begin < after:
            continue
        sensor = sensors[(injected // 4) % len(sensors)]
        value = CLEAR if injected % 4 == 3 else BREACH
        doc = {
            "event_id": f"lat-{token}-{injected}", "sensor_id": sensor, "metric": "pm25",
            "value": value, "unit": "ug/m3",
            "observed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }  # fmt: skip
        injected += 1
        yield Raw(topic, sensor.encode(), orjson.dumps(doc))


async def _collect(
    consumer: AIOKafkaConsumer, out: list[tuple[int, bytes]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            out.extend((r.timestamp, r.value) for r in records)


async def _raw_timestamps(bootstrap: str, topic: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: dict[str, int] = {}
    try:
        parts = await kafkautil.partitions(consumer, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in batch.values():
                for r in records:
                    if r.value and b'"lat-' in r.value:
                        found[orjson.loads(r.value)["event_id"]] = r.timestamp
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


async def _measure(
    bootstrap: str, topology: Topology, worker: Worker, rate: float, seconds: float
) -> dict[str, Any]:
    names = topology.topics.name
    sensors = targets(topology)
    streets = sorted({street for _, street in sensors})
    async with kafkautil.GroupWatch(bootstrap, "unused") as watch:
        deadline = time.monotonic() + 90
        warm = stream(topology, rate, [s for s, _ in sensors], per_second=1, after=1e9)
        while await watch.end(names("readings")) == 0:  # the worker is up once it outputs
            if not worker.alive() or time.monotonic() > deadline:
                msg = f"worker did not start:\n{worker.log_tail()}"
                raise RuntimeError(msg)
            await produce([next(warm) for _ in range(50)], bootstrap=bootstrap)
            await asyncio.sleep(0.5)
    consumer = AIOKafkaConsumer(
        *(names("incidents_street", code) for code in streets), bootstrap_servers=bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen: list[tuple[int, bytes]] = []
    stop = asyncio.Event()
    collector = asyncio.create_task(_collect(consumer, seen, stop))
    try:
        records = stream(topology, rate, [s for s, _ in sensors], per_second=20, after=3.0)
        stats = await produce(records, bootstrap=bootstrap, rate=rate, duration=seconds)
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await collector
        await consumer.stop()
    raw = await _raw_timestamps(bootstrap, names("raw_sensors"))
    deltas = []
    for ts, value in seen:
        incident = orjson.loads(value)
        if incident.get("rule_id") != "pm25" or incident.get("last_action") != "open":
            continue
        sources = [raw[i] for i in incident["evidence"]["event_ids"] if i in raw]
        if sources:
            deltas.append(ts - max(sources))
    deltas.sort()
    result: dict[str, Any] = {
        "rate_per_s": round(stats.rate, 1),
        "seconds": round(stats.elapsed, 1),
        "injected": sum(1 for k in raw if k.startswith("lat-")),
        "samples": len(deltas),
        "sensors": len(sensors),
    }
    if deltas:
        result |= {
            "p50_ms": statistics.median(deltas),
            "p99_ms": deltas[min(len(deltas) - 1, round(0.99 * (len(deltas) - 1)))],
            "max_ms": deltas[-1],
            "min_ms": deltas[0],
        }
    return result


def run(
    *, topology_path: Path, topology: Topology, bootstrap: str, workdir: Path, prefix: str,
    rate: float, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """One worker on a fresh prefix; a paced stream at ``rate`` for ``seconds``."""
    topo = kafkautil.with_prefix(topology, prefix)
    asyncio.run(kafkautil.create_all(bootstrap, topo))
    worker = Worker(
        topology_path, bootstrap, workdir, prefix=prefix,
        group=f"{prefix.rstrip('.')}-group", name=f"{prefix.rstrip('.')}-latency",
    ).start()  # fmt: skip
    try:
        result = asyncio.run(_measure(bootstrap, topo, worker, rate, seconds))
        result["peak_rss_mb"] = worker.peak_rss_mb()
        result["cpu_share"] = worker.cpu_share()
    finally:
        worker.stop()
        kafkautil.drop_step(bootstrap, prefix)
    return result
