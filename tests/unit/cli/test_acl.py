"""The ACL plan follows the topology: units write updates and read their own area only."""

from __future__ import annotations

from typing import cast

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.acl import Access, plan_acls, strimzi_users, unit_topic
from pipeline.kafka.acls import Acl, Operation, PatternType, ResourceType
from pipeline.topology import Topology, load_topology, parse_topology
from pipeline.topology.topics import TOPIC_KINDS, TopicKind
from tests.support.paths import DEMO

runner = CliRunner()


@pytest.fixture(scope="module")
def demo() -> Topology:
    return load_topology(DEMO)


def _of(acls: list[Acl], user: str) -> set[tuple[str, str, str]]:
    return {
        (acl.operation.name, acl.resource_type.name, acl.resource_name)
        for acl in acls
        if acl.principal == f"User:{user}"
    }


def test_each_unit_writes_the_updates_topic_and_reads_its_own_area_topic(demo: Topology) -> None:
    name = demo.topics.name
    acls = plan_acls(demo, Access())
    replies = (
        {("READ", "TOPIC", name(cast(TopicKind, "incident_replies")))}
        if "incident_replies" in TOPIC_KINDS
        else set()
    )
    for user, own in [
        ("unit-310000", name("incidents_city")),
        ("unit-310101", name("incidents_district", "310101")),
        ("unit-310101002", name("incidents_street", "310101002")),
    ]:
        assert _of(acls, user) == {
            ("WRITE", "TOPIC", name("incident_updates")),
            ("READ", "TOPIC", own),
            ("READ", "GROUP", f"{user}."),
            *replies,
        }
    units = {acl.principal for acl in acls if acl.principal.startswith("User:unit-")}
    assert len(units) == len(demo.areas), "one unit per city, district and street"
    unit_writes = {
        a.resource_name for a in acls if a.principal in units and a.operation.name == "WRITE"
    }
    assert unit_writes == {name("incident_updates")}


def test_the_pipeline_owns_its_prefix_its_faust_topics_and_groups_and_no_transactions(
    demo: Topology,
) -> None:
    acls = plan_acls(demo, Access(pipeline_user="pipe", worker_id="w1", area_units=False))
    assert {acl.principal for acl in acls} == {"User:pipe"}
    resources = {(a.resource_type, a.resource_name, a.pattern) for a in acls}
    assert resources == {
        (ResourceType.TOPIC, "cityops.demo.", PatternType.PREFIXED),
        (ResourceType.TOPIC, "w1-", PatternType.PREFIXED),
        (ResourceType.GROUP, "w1", PatternType.PREFIXED),
    }
    on_topics = {a.operation for a in acls if a.resource_name == "cityops.demo."}
    assert Operation.DELETE not in on_topics and Operation.ALTER not in on_topics
    assert {Operation.READ, Operation.WRITE, Operation.CREATE} <= on_topics


def test_sources_write_only_the_raw_topics_and_named_units_act_for_their_area(
    demo: Topology,
) -> None:
    name = demo.topics.name
    access = Access(sources=("gateway",), units=(("huangpu-police", "310101"),), area_units=False)
    acls = plan_acls(demo, access)
    assert _of(acls, "gateway") == {
        ("WRITE", "TOPIC", name("raw_sensors")),
        ("WRITE", "TOPIC", name("raw_reports")),
    }
    assert ("READ", "TOPIC", name("incidents_district", "310101")) in _of(acls, "huangpu-police")
    assert all(acl.pattern == PatternType.LITERAL for acl in acls if "gateway" in acl.principal)


def test_an_empty_topic_prefix_grants_the_wildcard_not_an_empty_prefix(demo: Topology) -> None:
    bare = demo.model_copy(update={"topics": demo.topics.model_copy(update={"prefix": ""})})
    acls = plan_acls(bare, Access(area_units=False))
    assert ("*", PatternType.LITERAL) in {(a.resource_name, a.pattern) for a in acls}
    assert all(a.resource_name for a in acls)


def test_apply_manages_the_planned_principals_and_every_unit_user_only() -> None:
    access = Access(sources=("gateway",), units=(("ops", "310101"),))
    for principal in ("User:cityops", "User:gateway", "User:ops", "User:unit-999"):
        assert access.manages(principal), principal
    for principal in ("User:admin", "User:broker", "Group:unit-1", "User:other"):
        assert not access.manages(principal), principal


def test_a_grid_unit_reads_its_streets_topic_and_the_city_unit_the_citys() -> None:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    grid = {"code": "310101002001", "level": "grid", "parent": "310101002", "name": "g1"}
    data["areas"].append(grid)
    topology = parse_topology(data, DEMO.parent)
    name = topology.topics.name
    assert unit_topic(topology, "310101002001") == name("incidents_street", "310101002")
    assert unit_topic(topology, "310000") == name("incidents_city")
    grid_units = plan_acls(topology, Access(units=(("grid-1", "310101002001"),)))
    assert ("READ", "TOPIC", name("incidents_street", "310101002")) in _of(grid_units, "grid-1")
    assert "User:unit-310101002001" not in {a.principal for a in grid_units}, "no grid topic"


def test_the_plan_as_strimzi_users_holds_every_acl(demo: Topology) -> None:
    acls = plan_acls(demo, Access(sources=("gateway",)))
    documents = list(yaml.safe_load_all(strimzi_users(acls, "cityops")))
    assert {d["metadata"]["name"] for d in documents} == {
        acl.principal.removeprefix("User:") for acl in acls
    }
    count = 0
    for document in documents:
        assert document["kind"] == "KafkaUser"
        assert document["metadata"]["labels"] == {"strimzi.io/cluster": "cityops"}
        assert document["spec"]["authentication"] == {"type": "scram-sha-512"}
        for rule in document["spec"]["authorization"]["acls"]:
            count += len(rule["operations"])
    assert count == len(acls)


def test_acl_apply_dry_run_shows_the_plan_and_a_bad_unit_is_refused() -> None:
    args = ["acl", "apply", "--topology", str(DEMO), "--no-area-units"]
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "User:cityops ALLOW WRITE TOPIC cityops.demo. (PREFIXED)" in result.output
    strimzi = runner.invoke(app, [*args, "--strimzi", "cityops"])
    assert strimzi.exit_code == 0, strimzi.output
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(strimzi.output)] == ["cityops"]
    bad = runner.invoke(app, [*args, "--dry-run", "--unit", "x=999"])
    assert bad.exit_code == 2 and "NAME=AREA" in bad.output
