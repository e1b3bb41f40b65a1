"""`cityops topics create|list|delete` against the real broker: exactly the topology's plan."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from pipeline.cli.topics import topics_app
from pipeline.kafka.admin import delete_topics, list_topics
from pipeline.topology import TopicSpec, load_topology
from tests.support.paths import ROOT

DEMO = ROOT / "topologies" / "demo.yaml"


def _copy(tmp_path: Path, prefix: str) -> Path:
    """The demo topology under a prefix no other test uses."""
    text = DEMO.read_text(encoding="utf-8")
    assert 'prefix: "cityops.demo."' in text
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace('prefix: "cityops.demo."', f'prefix: "{prefix}"'), "utf-8")
    return path


async def _describe(bootstrap: str, prefix: str) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic -> (partitions, every config entry) as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        if not names:
            return {}
        partitions = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        configs: dict[str, dict[str, str]] = {}
        for response in await admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                assert resource["error_code"] == 0, resource
                configs[resource["resource_name"]] = {
                    entry["config_names"]: entry["config_value"]
                    for entry in resource["config_entries"]
                }
    finally:
        await admin.close()
    return {name: (partitions[name], configs[name]) for name in names}


async def _create_stray(bootstrap: str, name: str) -> None:
    """Create a topic outside the plan and wait until the broker lists it.

    Why wait: a KRaft broker answers CreateTopics once the controller has committed it,
    and its own metadata cache catches up a moment later; listing at once could miss it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
        for _ in range(150):
            if name in await admin.list_topics():
                return
            await asyncio.sleep(0.1)
        msg = f"{name} was created but is not listed after 15 s"
        raise AssertionError(msg)
    finally:
        await admin.close()


@pytest.mark.integration
def test_create_list_delete_follow_the_topology_plan(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path = _copy(tmp_path, topic_prefix)
    plan = {spec.name: spec for spec in load_topology(path).topic_plan()}
    assert len(plan) == 17  # 10 fixed kinds + 2 district + 5 street incident topics
    runner = CliRunner()
    common = ["--topology", str(path), "--bootstrap", kafka_bootstrap]

    try:
        _create_list_delete(runner, common, plan, kafka_bootstrap, topic_prefix)
    finally:
        leftovers = asyncio.run(list_topics(kafka_bootstrap, topic_prefix))
        asyncio.run(delete_topics(kafka_bootstrap, list(leftovers)))


def _create_list_delete(
    runner: CliRunner,
    common: list[str],
    plan: dict[str, TopicSpec],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    first = runner.invoke(topics_app, ["create", *common])
    assert first.exit_code == 0, first.output
    assert f"{len(plan)} created, 0 already existed" in first.output

    described = asyncio.run(_describe(kafka_bootstrap, topic_prefix))
    assert set(described) == set(plan)
    for name, spec in plan.items():
        partitions, config = described[name]
        assert partitions == spec.partitions, name
        assert {key: config.get(key) for key in spec.config} == spec.config, name
    compacted = [n for n, (_, c) in described.items() if "compact" in c["cleanup.policy"]]
    assert sorted(compacted) == sorted(
        n
        for n in plan
        if ".incidents.district." in n or ".incidents.street." in n or n.endswith(".city")
    )
    assert described[f"{topic_prefix}incidents.audit"][1]["retention.ms"] == "-1"

    second = runner.invoke(topics_app, ["create", *common])
    assert second.exit_code == 0, second.output
    assert f"0 created, {len(plan)} already existed" in second.output
    assert asyncio.run(_describe(kafka_bootstrap, topic_prefix)) == described

    stray = f"{topic_prefix}not.in.plan"
    asyncio.run(_create_stray(kafka_bootstrap, stray))
    listing = runner.invoke(topics_app, ["list", *common])
    assert listing.exit_code == 0, listing.output
    assert f"{len(plan)} of {len(plan)} planned topics exist; 0 missing; 1 unexpected" in (
        listing.output
    )
    assert stray in listing.output and "not in the topology" in listing.output
    for name in plan:
        assert name in listing.output

    refused = runner.invoke(topics_app, ["delete", *common])
    assert refused.exit_code == 2
    assert "--yes" in refused.output
    assert set(asyncio.run(list_topics(kafka_bootstrap, topic_prefix))) == {*plan, stray}

    deleted = runner.invoke(topics_app, ["delete", *common, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert f"{len(plan)} deleted" in deleted.output
    assert set(asyncio.run(list_topics(kafka_bootstrap, topic_prefix))) == {stray}

    after = runner.invoke(topics_app, ["list", *common])
    assert f"0 of {len(plan)} planned topics exist; {len(plan)} missing" in after.output


def test_an_unreachable_broker_is_a_runtime_failure(tmp_path: Path) -> None:
    path = _copy(tmp_path, "unused.")
    result = CliRunner().invoke(topics_app, ["list", "-t", str(path), "--bootstrap", "127.0.0.1:9"])
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.output and "Traceback" not in result.output


def test_a_bad_topology_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: demo\n", encoding="utf-8")
    result = CliRunner().invoke(topics_app, ["create", "-t", str(bad)])
    assert result.exit_code == 2
