"""The chaos suite's input: one fixed, deterministic stream (the simulator, a fixed seed and
start) with window closers at its end, its dry run, and how a test feeds it to Kafka.

The stream is read once with the dry run's own reader (`read_input`), so the bytes a
worker is fed are exactly the bytes the dry run computed from.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from pipeline.engine.local import DryRunResult, InputRecord, read_input, run
from pipeline.topology import Topology, parse_topology
from tests.support.demo import demo_data
from tests.support.paths import DEMO, ROOT

SEED = 17
START = datetime.fromisoformat("2026-01-05T08:00:00+00:00")
#: About 50,000 events: 1,000 a wall second for 50 s, sixty times faster in simulated time
#: (50 simulated minutes), with pollution, burst mains and noise episodes, and reports.
SIMULATION = (
    "--rate", "1000", "--duration", "50s", "--speedup", "60", "--seed", str(SEED),
    "--start", START.isoformat(), "--episodes-per-hour", "12", "--reports-per-minute", "4",
)  # fmt: skip
#: Values that breach no rule and clear every incident, per metric.
CALM = {"pm25": 10.0, "pm10": 20.0, "noise_laeq": 40.0, "water_pressure": 300.0}
#: Closers are stamped this far after the stream's end (two rounds, an hour apart): the
#: first closes every window and every detection of the stream, the second lets the first
#: through detection's allowed lateness. Windows from the first closer on are left out of
#: the comparison (the worker keeps them open, the dry run closes them at end of input).
CLOSER_GAP = timedelta(hours=1)


def chaos_topology(
    prefix: str, *, replication: int = 1, min_insync: int | None = None,
    store: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The demo topology as the chaos suite runs it: times from the fixed past accepted,
    nothing expires, and no SLA escalation (it runs on the worker's wall clock, which the
    dry run does not simulate)."""
    data = demo_data()
    data["topics"].update(prefix=prefix, replication=replication)
    if min_insync is not None:
        data["topics"]["min_insync_replicas"] = min_insync
    data["topics"]["retention"] = dict.fromkeys(
        ("raw", "readings", "reports", "incidents", "deadletter", "audit"), -1
    )
    data["event_time"] = {"max_age": "3650d"}
    data["escalation"] = {"enabled": False}
    if store is not None:
        data["sinks"] = store
    return data


@dataclass(frozen=True)
class ChaosInput:
    """The stream as the dry run reads it, and the dry run's result."""

    base: Topology  # the topology the stream was generated for (its topic names)
    records: list[InputRecord]
    dry_run: DryRunResult
    until: datetime  # windows from here on hold only closers

    def kind_of(self, record: InputRecord) -> str:
        """The topic kind a record goes to (a raw line goes to the raw sensors topic)."""
        if record.topic is None:
            return "raw_sensors"
        for kind in ("raw_sensors", "raw_reports", "incident_updates"):
            if self.base.topics.name(kind) == record.topic:  # type: ignore[arg-type]
                return kind
        msg = f"input line {record.line} goes to {record.topic}, not an input topic"
        raise ValueError(msg)


def _closers(base: Topology, after: datetime) -> list[bytes]:
    """Two rounds of calm readings from every registered sensor, an hour apart."""
    raw = base.topics.name("raw_sensors")
    lines = []
    for round_ in (1, 2):
        at = after + round_ * CLOSER_GAP
        for sensor in base.sensors:
            for metric in sensor.metrics:
                value = {
                    "event_id": f"closer-{round_}-{sensor.id}-{metric}", "sensor_id": sensor.id,
                    "metric": metric, "value": CALM[metric],
                    "unit": base.metrics[metric].unit, "observed_at": at.isoformat(),
                }  # fmt: skip
                lines.append(orjson.dumps({"topic": raw, "key": sensor.id, "value": value}))
    return lines


def make_input(workdir: Path) -> ChaosInput:
    """Simulate the stream into `workdir/stream.jsonl` (fixed seed and start), append the
    closers, and dry-run it."""
    path = workdir / "stream.jsonl"
    subprocess.run(
        [sys.executable, "-m", "pipeline", "simulate", "--topology", str(DEMO), *SIMULATION,
         "--output", str(path)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    base = parse_topology(chaos_topology("cityops.demo."), DEMO.parent)
    span = timedelta(seconds=50 * 60)
    with path.open("ab") as out:
        out.write(b"\n".join(_closers(base, START + span)) + b"\n")
    records = read_input(path, base)
    result = run(base, records, source_name=path.name)
    return ChaosInput(base, records, result, until=START + span + CLOSER_GAP)


async def feed(
    bootstrap: str, topology: Topology, stream: ChaosInput,
    records: Sequence[InputRecord] | None = None,
) -> int:  # fmt: skip
    """Produce `records` (default: the whole stream) to `topology`'s input topics, in
    order, acknowledged by every in-sync replica; return how many."""
    chosen = stream.records if records is None else records
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=512 * 1024, request_timeout_ms=60_000,
    )  # fmt: skip
    await producer.start()
    try:
        futures = []
        for record in chosen:
            topic = topology.topics.name(stream.kind_of(record))  # type: ignore[arg-type]
            futures.append(
                await producer.send(
                    topic, value=record.value, key=record.key, headers=list(record.headers)
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(chosen)
