"""Highest rate the simulator reaches into the real broker (events/s), and generation alone.

Runs the same path as ``cityops simulate --rate 1000000 --duration 20s`` (simulator ->
batched producer -> broker) on a private topic prefix, then deletes the topics. The
"generate" line is the simulator alone (no Kafka), to show which side is the limit.

    .venv/bin/python bench/simulate_rate.py --bootstrap 127.0.0.1:9092 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.kafka.admin import create_topics, delete_topics  # noqa: E402
from pipeline.kafka.producer import produce  # noqa: E402
from pipeline.sim.simulator import Simulator  # noqa: E402
from pipeline.topology import Topology, load_topology  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _simulator(topology: Topology, rate: float) -> Simulator:
    return Simulator.for_rate(
        topology, rate=rate, seed=1, start=datetime(2026, 11, 25, tzinfo=UTC),
        fault_rate=0.01, reports_per_minute=2.0,
    )  # fmt: skip


def generate_only(topology: Topology, count: int) -> float:
    """Events/s of the simulator alone."""
    events = _simulator(topology, 1e6).events()
    started = time.perf_counter()
    for _ in itertools.islice(events, count):
        pass
    return count / (time.perf_counter() - started)


async def into_kafka(topology: Topology, bootstrap: str, seconds: float, rate: float) -> None:
    prefix = f"bench.{uuid.uuid4().hex[:8]}."
    topics = topology.topics.model_copy(update={"prefix": prefix})
    topology = topology.model_copy(update={"topics": topics})
    raw = {topics.name("raw_sensors"), topics.name("raw_reports")}
    await create_topics(bootstrap, [s for s in topology.topic_plan() if s.name in raw])
    try:
        stats = await produce(
            _simulator(topology, rate).events(), bootstrap=bootstrap, rate=rate, duration=seconds
        )
    finally:
        await delete_topics(bootstrap, sorted(raw))
    print(
        f"kafka:    {stats.acked:,} events acknowledged in {stats.elapsed:.1f} s = "
        f"{stats.rate:,.0f} events/s ({stats.bytes / stats.elapsed / 1e6:.1f} MB/s, "
        f"{topics.partitions} partitions, target {rate:,.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topology", type=Path, default=ROOT / "topologies" / "shanghai.yaml")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=1_000_000.0)
    args = parser.parse_args()
    topology = load_topology(args.topology)
    print(f"generate: {generate_only(topology, 500_000):,.0f} events/s (simulator only)")
    asyncio.run(into_kafka(topology, args.bootstrap, args.seconds, args.rate))


if __name__ == "__main__":
    main()
