"""Area rules and aggregates give the same answer whatever the order the raw partitions
are read in: the worker's interleaving depends on fetch timing, the dry run's on the file.

The stream is the simulator's (area rules included, episodes and breaches), keyed by
sensor into raw partitions; each run merges the partitions in another random order
(each partition's own order kept, as Kafka keeps it) and runs the worker's pipeline with
arrival times and intake progress, as the worker does.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.engine.emit import Record
from pipeline.engine.routing import Pipeline
from pipeline.models import row_model
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology, load_topology
from tests.support.paths import SHANGHAI

PARTITIONS = 4
START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _partitions(topology: Topology) -> list[list[Record]]:
    sim = Simulator(
        topology, seed=3, start=START, interval=timedelta(seconds=60), episodes_per_hour=12.0,
        reports_per_minute=0.0,
    )  # fmt: skip
    raw = topology.topics.name("raw_sensors")
    parts: list[list[Record]] = [[] for _ in range(PARTITIONS)]
    for event in sim.events(until=START + timedelta(minutes=40)):
        if event.topic != raw:
            continue
        p = zlib.crc32(event.key) % PARTITIONS
        arrived_ms = event.at_us // 1000 + 500
        parts[p].append(Record(raw, event.key, event.value, (), p, len(parts[p]), arrived_ms))
    return parts


def _merged(parts: list[list[Record]], rng: random.Random) -> list[Record]:
    """One interleaving: random bursts from random partitions, each partition in order."""
    queues = [deque(part) for part in parts]
    out: list[Record] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        for _ in range(rng.randint(1, 400)):
            if not queue:
                break
            out.append(queue.popleft())
    return out


def _run(topology: Topology, records: list[Record]) -> tuple[set[Any], set[Any]]:
    pipeline = Pipeline(topology, lambda _name: {})
    queue: deque[Record] = deque()
    offsets: dict[str, int] = {}
    incidents: dict[str, str] = {}
    rows: list[Any] = []

    def deliver(out: Any) -> None:
        rows.extend(out.rows)
        for emit in out.emits:
            if emit.topic == topology.topics.name("incidents_city"):
                doc = orjson.loads(emit.value)
                incidents[doc["incident_id"]] = doc["state"]
            if emit.topic in pipeline.routes:
                offset = offsets.get(emit.topic, 0)
                offsets[emit.topic] = offset + 1
                queue.append(Record(emit.topic, emit.key, emit.value, emit.headers, 0, offset))

    raw = topology.topics.name("raw_sensors")
    assigned = [f"{raw}:{p}" for p in range(PARTITIONS)]
    for start in range(0, len(records), 500):
        deliver(pipeline.handle(records[start : start + 500], assigned=assigned))
        while queue:
            deliver(pipeline.handle([queue.popleft()]))
    deliver(pipeline.finish(START + timedelta(hours=2)))
    while queue:
        deliver(pipeline.handle([queue.popleft()]))
    assert pipeline.aggregate.late == 0
    summary = {
        (r.level, r.area_code, r.metric, r.window_start, r.count, r.sum)
        for r in map(row_model, rows)
    }
    return set(incidents.items()), summary


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_interleaving_of_the_partitions_gives_the_same_incidents_and_aggregates(
    seed: int,
) -> None:
    topology = load_topology(SHANGHAI)
    assert any(rule.scope != "sensor" for rule in topology.rules)  # area rules are in play
    parts = _partitions(topology)
    in_order = _run(topology, [record for part in parts for record in part])
    shuffled = _run(topology, _merged(parts, random.Random(seed)))
    assert in_order[0], "the stream opens incidents"
    assert shuffled == in_order
