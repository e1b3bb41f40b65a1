"""The topics section: topic names and the topic plan."""

from __future__ import annotations

import pytest

from pipeline.topology import (
    TOPIC_KINDS,
    load_topology,
)
from tests.unit.topology.demo_edits import DEMO, errors_after, valid_after


def test_topics_and_topic_plan() -> None:
    topo = load_topology(DEMO)
    assert topo.topics.name("raw_sensors") == "cityops.demo.sensors.raw"
    assert topo.topics.name("incidents_city") == "cityops.demo.incidents.city"
    assert topo.topics.name("incidents_district", "310101") == (
        "cityops.demo.incidents.district.310101"
    )
    assert topo.topics.name("incidents_street", "310101002") == (
        "cityops.demo.incidents.street.310101002"
    )
    assert topo.topics.name("audit") == "cityops.demo.incidents.audit"
    with pytest.raises(ValueError, match="needs an area code"):
        topo.topics.name("incidents_street")
    with pytest.raises(ValueError, match="unknown topic kind"):
        topo.topics.name("bogus")  # type: ignore[arg-type]
    plan = {spec.name: spec for spec in topo.topic_plan()}
    assert len(plan) == len(TOPIC_KINDS) - 2 + 2 + 5  # fixed kinds, 2 districts, 5 streets
    city = plan["cityops.demo.incidents.city"]
    assert city.partitions == 3
    # Compacted topics roll a segment hourly and compact at 10 % dirty: compaction happens.
    assert city.config == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(30 * 86400000),
        "max.message.bytes": "1048576",
        "segment.ms": "3600000",
        "min.cleanable.dirty.ratio": "0.1",
    }
    updates = plan["cityops.demo.incidents.updates"].config
    assert updates["message.timestamp.type"] == "LogAppendTime"  # the pipeline's receive time
    assert plan["cityops.demo.incidents.replies"].config["cleanup.policy"] == "delete"
    assert plan["cityops.demo.incidents.audit"].config["retention.ms"] == "-1"
    assert plan["cityops.demo.readings"].config == {
        "cleanup.policy": "delete",
        "retention.ms": str(3 * 86400000),
        "max.message.bytes": "1048576",
    }
    assert plan["cityops.demo.incidents.street.310104011"].partitions == 1


def test_replication_and_min_insync_replicas_reach_every_topic() -> None:
    topo = valid_after(lambda d: d["topics"].update(replication=3, min_insync_replicas=2))
    for spec in topo.topic_plan():
        assert (spec.replication, spec.config["min.insync.replicas"]) == (3, "2"), spec.name
    plain = valid_after(lambda d: d["topics"].update(replication=3))  # the broker's default
    assert all("min.insync.replicas" not in spec.config for spec in plain.topic_plan())


def test_min_insync_replicas_above_replication_is_refused_by_path() -> None:
    errors = errors_after(lambda d: d["topics"].update(replication=2, min_insync_replicas=3))
    assert [(path, "min_insync_replicas (3) cannot exceed replication (2)" in msg)
            for path, msg in errors] == [("topics", True)]  # fmt: skip


def test_one_message_size_sets_every_topic_and_the_parts_of_records() -> None:
    """`topics.max_message_bytes` is every topic's `max.message.bytes`; a dead letter's
    original and an incident's events are cut to a quarter of it (256 KiB at most)."""
    small = valid_after(lambda d: d["topics"].update(max_message_bytes=131_072))
    assert {spec.config["max.message.bytes"] for spec in small.topic_plan()} == {"131072"}
    assert small.topics.part_bytes == 32_768
    assert load_topology(DEMO).topics.part_bytes == 262_144
    errors = errors_after(lambda d: d["topics"].update(max_message_bytes=1000))
    assert any(path == "topics.max_message_bytes" for path, _ in errors)
