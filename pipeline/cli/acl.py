"""``cityops acl apply``: who may read and write which topic, from the topology.

Why from the topology: topic names and areas live there, so the ACLs follow it as topics
do (`cityops topics create`). Three kinds of principal (``User:<SCRAM user>``):

- the pipeline (default ``cityops``): everything the worker does on the topology's topics,
  on its Faust topics and consumer groups (named after the worker id) and transactions;
- sources (``--source``): may only write the raw topics;
- handling units (one per city, district and street area, ``unit-<code>``, and any
  ``--unit NAME=AREA``): may only write the updates topic and read their own area's
  incident topic (and the replies topic when the topology has one), with consumer groups
  named ``<unit>.<anything>``.

``apply`` converges: it creates what is missing and deletes the ACLs of the managed
principals (the pipeline, the sources, every ``unit-`` user and the listed units) that the
plan no longer holds. Run it as a super user (``User:admin`` on the local broker);
``--dry-run`` only shows the plan, ``--strimzi CLUSTER`` prints it as KafkaUser resources.
docs/security.md has the threat model.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import yaml
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from pipeline.cli.common import EXIT_RUNTIME, console, fail, open_topology
from pipeline.kafka.acls import (
    Acl,
    AclError,
    Operation,
    PatternType,
    ResourceType,
    apply_acls,
)
from pipeline.models import AreaLevel
from pipeline.settings import Settings
from pipeline.topology import Topology
from pipeline.topology.topics import TOPIC_KINDS, TopicKind

__all__ = ["Access", "acl_app", "plan_acls", "strimzi_users", "unit_topic"]

acl_app = typer.Typer(
    name="acl",
    help="The Kafka ACLs of a topology (a secured broker).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@acl_app.callback()
def _group() -> None:
    """The Kafka ACLs of a topology (a secured broker)."""


#: What the worker does on its topics: consume, produce, create missing ones, inspect them.
_TOPIC_OPERATIONS = (
    Operation.READ,
    Operation.WRITE,
    Operation.CREATE,
    Operation.DESCRIBE,
    Operation.DESCRIBE_CONFIGS,
)
_UNIT_LEVELS = (AreaLevel.city, AreaLevel.district, AreaLevel.street)
#: The topic kind of update replies (another change adds it); read when the topology has it.
_REPLIES = "incident_replies"


@dataclass(frozen=True)
class Access:
    """The principals to plan for; user names without the ``User:`` prefix."""

    pipeline_user: str = "cityops"
    worker_id: str = "cityops"
    sources: tuple[str, ...] = ()
    units: tuple[tuple[str, str], ...] = ()  # (user, area code)
    area_units: bool = True
    unit_prefix: str = "unit-"

    def manages(self, principal: str) -> bool:
        """Whether `apply` owns this principal's ACLs (and may delete them)."""
        name = principal.removeprefix("User:")
        listed = {self.pipeline_user, *self.sources, *(user for user, _ in self.units)}
        return principal.startswith("User:") and (
            name in listed or bool(self.unit_prefix) and name.startswith(self.unit_prefix)
        )


def unit_topic(topology: Topology, code: str) -> str:
    """The incident topic a unit of area `code` reads: its street's, else its district's,
    else the city's (grid and community incidents go to their street's topic)."""
    for area in topology.ancestors(code):
        if area.level == AreaLevel.street:
            return topology.topics.name("incidents_street", area.code)
        if area.level == AreaLevel.district:
            return topology.topics.name("incidents_district", area.code)
    return topology.topics.name("incidents_city")


def _allow(
    user: str, kind: ResourceType, name: str, pattern: PatternType, *ops: Operation
) -> list[Acl]:
    return [Acl(f"User:{user}", kind, name, pattern, operation) for operation in ops]


def _pipeline_acls(topology: Topology, access: Access) -> list[Acl]:
    user, worker = access.pipeline_user, access.worker_id
    prefix = topology.topics.prefix
    # An empty topic prefix means every topic: the wildcard, not an empty prefix.
    own = ("*", PatternType.LITERAL) if not prefix else (prefix, PatternType.PREFIXED)
    return [
        *_allow(user, ResourceType.TOPIC, *own, *_TOPIC_OPERATIONS),
        # Faust's changelog topics: <worker id>-<name>. No transactional ids: the pipeline
        # has no exactly-once mode (docs/incidents.md, "Redelivery").
        *_allow(user, ResourceType.TOPIC, f"{worker}-", PatternType.PREFIXED, *_TOPIC_OPERATIONS),
        # The Faust group (<worker id>) and the raw intake's (<worker id>.intake).
        *_allow(user, ResourceType.GROUP, worker, PatternType.PREFIXED, Operation.READ),
    ]


def plan_acls(topology: Topology, access: Access) -> list[Acl]:
    """Every ACL the topology's principals need, sorted, without duplicates."""
    name = topology.topics.name
    acls = _pipeline_acls(topology, access)
    for source in access.sources:
        for kind in ("raw_sensors", "raw_reports"):
            acls += _allow(
                source, ResourceType.TOPIC, name(kind), PatternType.LITERAL, Operation.WRITE
            )
    units = list(access.units)
    if access.area_units:
        units += [
            (f"{access.unit_prefix}{area.code}", area.code)
            for level in _UNIT_LEVELS
            for area in topology.areas_at(level)
        ]
    for user, code in units:
        reads = [unit_topic(topology, code)]
        if _REPLIES in TOPIC_KINDS:
            reads.append(name(cast(TopicKind, _REPLIES)))
        acls += _allow(
            user, ResourceType.TOPIC, name("incident_updates"), PatternType.LITERAL, Operation.WRITE
        )
        for topic in reads:
            acls += _allow(user, ResourceType.TOPIC, topic, PatternType.LITERAL, Operation.READ)
        acls += _allow(user, ResourceType.GROUP, f"{user}.", PatternType.PREFIXED, Operation.READ)
    return sorted(set(acls))


_STRIMZI_OPERATIONS = {
    Operation.READ: "Read",
    Operation.WRITE: "Write",
    Operation.CREATE: "Create",
    Operation.DESCRIBE: "Describe",
    Operation.DESCRIBE_CONFIGS: "DescribeConfigs",
}
_STRIMZI_TYPES = {
    ResourceType.TOPIC: "topic",
    ResourceType.GROUP: "group",
    ResourceType.TRANSACTIONAL_ID: "transactionalId",
}


def strimzi_users(acls: list[Acl], cluster: str) -> str:
    """The plan as Strimzi KafkaUser resources (SCRAM-SHA-512, simple authorization): the
    User Operator then creates each user's password Secret and keeps the ACLs in place."""
    by_user: dict[str, dict[tuple[ResourceType, str, PatternType], list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for acl in acls:
        resource = (acl.resource_type, acl.resource_name, acl.pattern)
        by_user[acl.principal.removeprefix("User:")][resource].append(
            _STRIMZI_OPERATIONS[acl.operation]
        )
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": user, "labels": {"strimzi.io/cluster": cluster}},
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": {
                                "type": _STRIMZI_TYPES[kind],
                                "name": name,
                                "patternType": pattern.name.lower(),
                            },
                            "operations": operations,
                            "host": "*",
                        }
                        for (kind, name, pattern), operations in resources.items()
                    ],
                },
            },
        }
        for user, resources in sorted(by_user.items())
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def _settings(bootstrap: str | None = None) -> Settings:
    try:
        return Settings(kafka_bootstrap_servers=bootstrap) if bootstrap else Settings()
    except ValidationError as exc:
        fail(f"bad settings: {exc}")


def _access(
    settings: Settings,
    topology: Topology,
    *,
    pipeline_user: str,
    worker_id: str | None,
    sources: list[str] | None,
    units: list[str] | None,
    area_units: bool,
    unit_prefix: str,
) -> Access:
    pairs: list[tuple[str, str]] = []
    for spec in units or []:
        user, sep, area = spec.partition("=")
        if not sep or not user or not topology.has_area(area):
            fail(f"--unit {spec!r}: expected NAME=AREA with an area of the topology")
        pairs.append((user, area))
    return Access(
        pipeline_user=pipeline_user,
        worker_id=worker_id or settings.worker_id,
        sources=tuple(sources or ()),
        units=tuple(pairs),
        area_units=area_units,
        unit_prefix=unit_prefix,
    )


def _show(topo: Topology, acls: list[Acl]) -> None:
    for acl in acls:
        console.print(acl.describe(), highlight=False, soft_wrap=True)
    console.print(
        f"{len(acls)} ACLs for {len({a.principal for a in acls})} principals of {topo.id} "
        f"(topic prefix {topo.topics.prefix!r})",
        highlight=False,
    )


@acl_app.command("apply")
def apply_command(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")],
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: CITYOPS_KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
    pipeline_user: Annotated[
        str, typer.Option(help="The pipeline's SCRAM user (the workers connect as it).")
    ] = "cityops",
    worker_id: Annotated[
        str | None, typer.Option(help="The workers' id (default: CITYOPS_WORKER_ID).")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="A user that may write the raw topics.")
    ] = None,
    unit: Annotated[
        list[str] | None,
        typer.Option("--unit", help="NAME=AREA: a unit user acting for an area (repeatable)."),
    ] = None,
    area_units: Annotated[
        bool, typer.Option(help="One unit user per city, district and street: <prefix><code>.")
    ] = True,
    unit_prefix: Annotated[str, typer.Option(help="Name prefix of the per-area unit users.")] = (
        "unit-"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show the plan; touch no broker.")
    ] = False,
    strimzi: Annotated[
        str | None,
        typer.Option(help="Only print the plan as Strimzi KafkaUsers of this Kafka cluster."),
    ] = None,
) -> None:
    """Create the missing ACLs and delete the managed principals' stale ones (as a super
    user), or show the plan (--dry-run) or print it as Strimzi KafkaUsers (--strimzi)."""
    settings = _settings(bootstrap)
    topo = open_topology(topology, settings)
    access = _access(
        settings, topo, pipeline_user=pipeline_user, worker_id=worker_id, sources=source,
        units=unit, area_units=area_units, unit_prefix=unit_prefix,
    )  # fmt: skip
    acls = plan_acls(topo, access)
    if strimzi is not None:
        sys.stdout.write(strimzi_users(acls, strimzi))  # plain YAML, for kubectl apply
        return
    if dry_run:
        _show(topo, acls)
        return
    try:
        report = asyncio.run(apply_acls(settings, acls, access.manages))
    except AclError as exc:
        fail(str(exc), EXIT_RUNTIME)
    except (KafkaError, OSError) as exc:
        fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}", EXIT_RUNTIME)
    for acl in report.created:
        console.print(f"[green]created[/] {acl.describe()}", highlight=False)
    for acl in report.deleted:
        console.print(f"[red]deleted[/] {acl.describe()}", highlight=False)
    console.print(
        f"{len(report.created)} created, {len(report.deleted)} deleted, "
        f"{len(report.kept)} already in place",
        highlight=False,
    )
