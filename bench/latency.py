"""Latency from a raw reading to the incident it opens on a street topic, at a steady rate.

How: a paced stream of simulated readings (no faults, no episodes) at ``rate``, into which
readings of PM2.5 for the Huangpu air sensors (which have streets) are injected in cycles
of three breaches and one clear, so the pm25 rule opens an incident every fourth injected
reading. Both ends use Kafka record timestamps (CreateTime, one host clock): the raw
record of the breaching reading, found through the incident's evidence event ids, and the
incident's record on the street topic. Between them, the first readings batch that holds
that reading and the first incident-events message that opens the incident split the
time into its hops (intake, analysis, lifecycle): a slow sample says where it waited.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
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


async def _first_times(
    bootstrap: str, topic: str, keys: Callable[[bytes], Iterable[str]]
) -> dict[str, int]:
    """Every key that `keys` finds in a record of `topic` (read whole, from the start),
    with the time (ms) of the first record that held it."""
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
                        for key in keys(r.value):
                            if key not in found or r.timestamp < found[key]:
                                found[key] = r.timestamp
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


def _raw_ids(value: bytes) -> list[str]:
    """The injected reading's event id (a raw canonical reading)."""
    return [orjson.loads(value)["event_id"]]


def _batch_ids(value: bytes) -> list[str]:
    """The injected readings' event ids in a readings batch (its `event_id` column)."""
    return [i for i in orjson.loads(value)["event_id"] if i.startswith("lat-")]


def _opened_ids(value: bytes) -> list[str]:
    """The incidents that an incident-events message opens (an array of snapshots)."""
    return [i["incident_id"] for i in orjson.loads(value) if i.get("last_action") == "open"]


class Hops(NamedTuple):
    """Where one incident's latency went (ms): raw record -> its readings batch (intake),
    -> the incident event (analysis), -> the street record (lifecycle)."""

    total: int
    intake: int
    analysis: int
    lifecycle: int


def hops(
    opened: Iterable[tuple[int, dict[str, Any]]],
    raw: dict[str, int],
    batched: dict[str, int],
    events: dict[str, int],
) -> list[Hops]:
    """The hops of each opened incident on a street topic ((record time, incident)), from
    the first times of its latest evidence reading in the raw and readings topics and of
    its id on the incident-events topic; sorted by total. Incidents whose records were not
    all found are left out."""
    found = []
    for street_ms, incident in opened:
        ids = [i for i in incident["evidence"]["event_ids"] if i in raw]
        if not ids:
            continue
        last = max(ids, key=raw.__getitem__)
        event_ms = events.get(incident["incident_id"])
        batch_ms = batched.get(last)
        if event_ms is None or batch_ms is None:
            continue
        born = raw[last]
        found.append(
            Hops(street_ms - born, batch_ms - born, event_ms - batch_ms, street_ms - event_ms)
        )
    return sorted(found)


def summary(samples: list[Hops]) -> dict[str, Any]:
    """p50 / p99 / max / min of the totals, the median of each hop, and the hops of the
    p99 sample (what made it slow)."""
    if not samples:
        return {}
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return {
        "p50_ms": statistics.median(s.total for s in samples),
        "p99_ms": p99.total,
        "max_ms": samples[-1].total,
        "min_ms": samples[0].total,
        "hops_p50_ms": {
            name: statistics.median(getattr(s, name) for s in samples)
            for name in ("intake", "analysis", "lifecycle")
        },
        "hops_of_p99_ms": {
            "intake": p99.intake,
            "analysis": p99.analysis,
            "lifecycle": p99.lifecycle,
        },
    }


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
    raw = await _first_times(bootstrap, names("raw_sensors"), _raw_ids)
    batched = await _first_times(bootstrap, names("readings"), _batch_ids)
    events = await _first_times(bootstrap, names("incident_events"), _opened_ids)
    opened = []
    for ts, value in seen:
        incident = orjson.loads(value)
        if incident.get("rule_id") == "pm25" and incident.get("last_action") == "open":
            opened.append((ts, incident))
    samples = hops(opened, raw, batched, events)
    result: dict[str, Any] = {
        "rate_per_s": round(stats.rate, 1),
        "seconds": round(stats.elapsed, 1),
        "injected": sum(1 for k in raw if k.startswith("lat-")),
        "samples": len(samples),
        "sensors": len(sensors),
    }
    result |= summary(samples)
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
