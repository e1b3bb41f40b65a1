"""Pure stages: microseconds per reading through normalize + detect + aggregate (+ lifecycle),
with no Kafka, exactly as the worker batches them.

Run: .venv/bin/python -m bench.stages_pure [--readings 200000] [--gateway 100] [--profile]

The input is the simulator's canonical stream for the topology (seeded, with episodes and
breaches), every sensor reporting every metric once a minute as in the end-to-end runs
(`bench.kafkautil.readings`): at the sample's grid level that makes about two closed
rows per reading, at 30 s about one, so a faster cadence here than there made the pure
figure understate what the worker does per reading. Raw records carry a partition (by
key, like a keyed producer), an offset and an arrival time; the intake normalizes them
`--intake` at a time (the worker's batch size), and every message the stages emit is
handed to the stage that reads its topic, through the same `Pipeline.handle` the worker
calls. `--gateway N` packs N readings into each raw message (a canonical JSON array, as
a gateway would send).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.engine.emit import Record
from pipeline.engine.routing import Pipeline
from pipeline.engine.worker.app import tune_collector
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 6
START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


@dataclass
class StageTimes:
    """Seconds spent per consumer group, and what went through."""

    intake: float = 0.0
    analyze: float = 0.0
    lifecycle: float = 0.0
    readings: int = 0
    raw_messages: int = 0
    rows: int = 0
    incident_messages: int = 0

    @property
    def total(self) -> float:
        return self.intake + self.analyze + self.lifecycle

    def per_reading_us(self) -> dict[str, float]:
        n = max(1, self.readings)
        return {
            "intake": self.intake / n * 1e6,
            "analyze": self.analyze / n * 1e6,
            "lifecycle": self.lifecycle / n * 1e6,
            "total": self.total / n * 1e6,
        }


def raw_records(topology: Topology, readings: int, gateway: int) -> list[Record]:
    """The simulator's canonical readings as raw records (`gateway` readings a message)."""
    sim = Simulator(
        topology, seed=7, start=START, episodes_per_hour=1.0,
        reports_per_minute=0.0,
    )  # fmt: skip
    topic = topology.topics.name("raw_sensors")
    docs: list[tuple[bytes, bytes, int]] = []
    for event in sim.events():
        if event.topic != topic:
            continue
        docs.append((event.key, event.value, event.at_us))
        if len(docs) >= readings:
            break
    offsets = [0] * PARTITIONS
    records: list[Record] = []
    for start in range(0, len(docs), gateway):
        chunk = docs[start : start + gateway]
        key = chunk[0][0]
        value = chunk[0][1] if gateway == 1 else b"[" + b",".join(d[1] for d in chunk) + b"]"
        partition = (
            zlib.crc32(key) % PARTITIONS if gateway == 1 else (start // gateway) % PARTITIONS
        )
        arrived_ms = chunk[-1][2] // 1000 + 200  # arrives 0.2 s after the newest reading
        records.append(Record(topic, key, value, (), partition, offsets[partition], arrived_ms))
        offsets[partition] += 1
    return records


def run(pipeline: Pipeline, records: list[Record], intake: int) -> StageTimes:
    """Everything through the pipeline as the worker would, timing each group."""
    times = StageTimes(raw_messages=len(records))
    names = pipeline.topology.topics.name
    analyze_topics = {names("readings"), names("reports")}
    lifecycle_topics = {names("incident_events"), names("incident_updates")}
    offsets: dict[str, int] = {}
    for start in range(0, len(records), intake):
        began = time.process_time()
        out = pipeline.handle(records[start : start + intake])
        times.intake += time.process_time() - began
        queue: deque[Any] = deque(out.emits)
        while queue:
            analyze, lifecycle = [], []
            while queue:
                emit = queue.popleft()
                offset = offsets.get(emit.topic, 0)
                offsets[emit.topic] = offset + 1
                record = Record(emit.topic, emit.key, emit.value, emit.headers, 0, offset)
                if emit.topic in analyze_topics:
                    times.readings += emit.count if emit.kind == "reading" else 0
                    analyze.append(record)
                elif emit.topic in lifecycle_topics:
                    lifecycle.append(record)
            if analyze:
                began = time.process_time()
                result = pipeline.handle(analyze)
                pipeline.persist("analyze")
                times.analyze += time.process_time() - began
                times.rows += len(result.rows)
                queue.extend(result.emits)
            if lifecycle:
                times.incident_messages += len(lifecycle)
                began = time.process_time()
                pipeline.handle(lifecycle)
                pipeline.persist("lifecycle")
                times.lifecycle += time.process_time() - began
    return times


def measure(topology: Topology, readings: int, gateway: int, intake: int) -> StageTimes:
    """One measured run over a fresh pipeline. States are the worker's table entries kept
    in dicts as objects: the JSON encoding of their changelog records (about 7 us a
    reading in a saturated worker with the sample) is not counted."""
    records = raw_records(topology, readings, gateway)
    tables: dict[str, dict[str, Any]] = {}
    pipeline = Pipeline(topology, lambda name: tables.setdefault(name, {}))
    thresholds = gc.get_threshold()
    tune_collector()  # the worker's collector settings, after its start-up
    try:
        return run(pipeline, records, intake)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def summary(
    topology: Topology,
    *,
    readings: int,
    intake: int = 5000,
    full_city: Topology | None = None,
    full_city_readings: int = 1_000_000,
) -> dict[str, Any]:
    """The pure-stage figures for `make bench`: one reading a message, then gateways of 100;
    with `full_city` (a generated registry) also one reading a message at that scale.

    Why the full city too: costs that grow with the registry or a district's sensors (the
    normalizer's sensor cache missing every lookup, a window's changelog groups) do not
    show with the sample's 400 sensors. Its readings should span a few windows (10 a
    sensor, about 3 minutes of the city), else no window closes."""
    single = measure(topology, readings, 1, intake)
    batched = measure(topology, readings, 100, intake)
    out: dict[str, Any] = {
        "readings": readings,
        "us_per_reading": single.per_reading_us(),
        "gateway_us_per_reading": batched.per_reading_us(),
        "target_us": 15.0,
    }
    if full_city is not None:
        scaled = measure(full_city, full_city_readings, 1, intake)
        out["full_city"] = {
            "sensors": len(full_city.sensors),
            "readings": scaled.readings,
            "rows": scaled.rows,
            "us_per_reading": scaled.per_reading_us(),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, default=ROOT / "topologies" / "shanghai.yaml")
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--gateway", type=int, default=1)
    parser.add_argument("--intake", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    topology = load_topology(args.topology)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
    times = measure(topology, args.readings, args.gateway, args.intake)
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    print(orjson.dumps({**times.__dict__, "us_per_reading": times.per_reading_us()}).decode())


if __name__ == "__main__":
    main()
