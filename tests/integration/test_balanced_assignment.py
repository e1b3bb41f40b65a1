"""A worker that joins a running one gets an even share of the load, not only of the
partitions (`pipeline.kafka.assignor`).

The sample's readings partitions hold 50, 50, 50, 75, 100 and 75 sensors. Faust alone,
sticky, left the first worker three partitions of one end and the joiner the other three
(150 / 250 sensors): two workers moved 21,700-23,700 readings/s where an even split moved
28,300-30,600.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.engine.batches import partition_loads
from pipeline.kafka.admin import create_topics
from pipeline.topology import parse_topology
from tests.support.paths import ROOT
from tests.support.worker import WorkerProcess, both_ready

SAMPLE = ROOT / "topologies" / "shanghai.yaml"


@pytest.mark.integration
async def test_a_worker_that_joins_a_running_one_gets_half_the_load(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["topics"]["prefix"] = topic_prefix
    topology = parse_topology(data, SAMPLE.parent)
    await create_topics(kafka_bootstrap, topology.topic_plan())
    loads = partition_loads(topology)
    assert len(set(loads.values())) > 1, "the partitions' loads differ (else nothing to show)"
    readings = topology.topics.name("readings")

    def worker(instance: str) -> WorkerProcess:
        return WorkerProcess(SAMPLE, kafka_bootstrap, tmp_path, prefix=topic_prefix,
                             worker_id=f"balance-{topic_prefix}", instance=instance)  # fmt: skip

    first, joiner = worker("-1"), worker("-2")
    first.start()
    try:
        await first.wait_ready()
        assert first.assigned(readings) == set(loads), first.report()  # alone: everything
        joiner.start()
        await both_ready(first, joiner, timeout=90)
        shares = [first.assigned(readings), joiner.assigned(readings)]
    finally:
        joiner.stop()
        first.stop()
    assert not shares[0] & shares[1] and shares[0] | shares[1] == set(loads), shares
    assert sorted(map(len, shares)) == [3, 3], shares
    weights = sorted(sum(loads[p] for p in share) for share in shares)
    assert weights[1] - weights[0] <= min(loads.values()), (shares, weights)
