"""``cityops topics create|list|delete``: the Kafka topics a topology needs.

Why: a deployment's topics (partitions, replication, retention, compaction) follow from
its topology; creating exactly ``topology.topic_plan()`` explicitly and idempotently beats
broker auto-creation with default settings, and ``list`` shows at a glance what is missing,
what differs and what lies under the prefix that the topology does not know.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from rich.table import Table

from pipeline.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_RUNTIME,
    JsonOption,
    TopologyOption,
    console,
    fail,
    make_settings,
    open_topology,
    print_json,
    quiet_kafka_logs,
)
from pipeline.kafka.admin import TopicAdminError, create_topics, delete_topics, list_topics
from pipeline.settings import Settings
from pipeline.topology import Topology

__all__ = ["EXIT_MISSING", "topics_app"]

#: `topics list` status when planned topics are missing (0: all there, 1: broker trouble)
EXIT_MISSING = 3

_T = TypeVar("_T")

topics_app = typer.Typer(
    name="topics",
    help="Create, list and delete the Kafka topics of a topology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers (default: CITYOPS_KAFKA_BOOTSTRAP_SERVERS)."),
]


def _open(topology: Path, bootstrap: str | None) -> tuple[Topology, Settings]:
    settings = make_settings(kafka_bootstrap_servers=bootstrap)
    quiet_kafka_logs()
    return open_topology(topology, settings), settings


def _run(settings: Settings, action: Coroutine[Any, Any, _T]) -> _T:
    """Run one admin call; broker trouble is a runtime failure (exit 1), no stack trace."""
    try:
        return asyncio.run(action)
    except TopicAdminError as exc:
        fail(str(exc), EXIT_RUNTIME)
    except (KafkaError, OSError) as exc:
        fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc}", EXIT_RUNTIME)


@topics_app.command("create")
def create_command(topology: TopologyOption, bootstrap: BootstrapOption = None) -> None:
    """Create every topic of the topology's plan that does not exist yet."""
    topo, settings = _open(topology, bootstrap)
    plan = topo.topic_plan()
    started = time.monotonic()

    def progress(done: int, missing: int) -> None:
        what = "created, all with leaders" if done == missing else "requested"
        console.print(
            f"{done}/{missing} missing topics {what} ({time.monotonic() - started:.1f} s)",
            highlight=False,
        )

    report = _run(settings, create_topics(settings, plan, progress))
    if len(report.created) <= 30:
        for name in report.created:
            console.print(f"[green]created[/] {name}", highlight=False)
    console.print(
        f"{len(report.created)} created, {len(report.existing)} already existed "
        f"({len(plan)} topics in the plan, prefix {topo.topics.prefix!r}) "
        f"in {time.monotonic() - started:.1f} s",
        highlight=False,
    )


@topics_app.command("list")
def list_command(
    topology: TopologyOption, bootstrap: BootstrapOption = None, as_json: JsonOption = False
) -> None:
    """Show the plan's topics, which exist (with partitions), and unexpected ones.

    Exit status 3 when planned topics are missing (1 when the broker cannot be asked).
    """
    topo, settings = _open(topology, bootstrap)
    plan = topo.topic_plan()
    present = _run(settings, list_topics(settings, topo.topics.prefix))
    rows: list[dict[str, Any]] = []
    for spec in plan:
        actual = present.get(spec.name)
        if actual is None:
            status = "missing"
        else:
            status = "exists" if actual == spec.partitions else "partitions differ"
        rows.append(
            {
                "topic": spec.name,
                "status": status,
                "partitions": actual,
                "planned_partitions": spec.partitions,
                "cleanup_policy": spec.config.get("cleanup.policy", ""),
                "retention_ms": spec.config.get("retention.ms", ""),
            }
        )
    planned = {spec.name for spec in plan}
    for name in sorted(name for name in present if name not in planned):
        rows.append(
            {"topic": name, "status": "not in the topology", "partitions": present[name],
             "planned_partitions": None, "cleanup_policy": "", "retention_ms": ""}
        )  # fmt: skip
    missing = sum(row["status"] == "missing" for row in rows)
    unexpected = sum(row["status"] == "not in the topology" for row in rows)
    if as_json:
        print_json(
            {"topology": topo.id, "prefix": topo.topics.prefix, "planned": len(plan),
             "missing": missing, "unexpected": unexpected, "topics": rows}
        )  # fmt: skip
    else:
        console.print(_topics_table(topo, rows))
        console.print(
            f"{len(plan) - missing} of {len(plan)} planned topics exist; {missing} missing; "
            f"{unexpected} unexpected under the prefix",
            highlight=False,
        )
    if missing:
        raise typer.Exit(EXIT_MISSING)


_STATUS_STYLE = {
    "missing": "red",
    "partitions differ": "yellow",
    "exists": "green",
    "not in the topology": "magenta",
}


def _topics_table(topo: Topology, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"topics of {topo.id} (prefix {topo.topics.prefix!r})")
    table.add_column("topic", no_wrap=True)
    for column in ("partitions", "cleanup", "retention.ms", "status"):
        table.add_column(column)
    for row in rows:
        actual, plan = row["partitions"], row["planned_partitions"]
        if actual is None:
            shown = str(plan)
        elif plan is not None and actual != plan:
            shown = f"{actual} (plan {plan})"
        else:
            shown = str(actual)
        status = row["status"]
        table.add_row(
            row["topic"], shown, row["cleanup_policy"], row["retention_ms"],
            f"[{_STATUS_STYLE[status]}]{status}[/]",
        )  # fmt: skip
    return table


@topics_app.command("delete")
def delete_command(
    topology: TopologyOption,
    bootstrap: BootstrapOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete (data is lost).")] = False,
) -> None:
    """Delete the plan's topics (asks for --yes: their records are gone for good)."""
    topo, settings = _open(topology, bootstrap)
    names = [spec.name for spec in topo.topic_plan()]
    if not yes:
        console.print(
            f"would delete up to {len(names)} topics with prefix {topo.topics.prefix!r}; "
            "their records are lost. Run again with --yes.",
            highlight=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    deleted = _run(settings, delete_topics(settings, names))
    for name in deleted:
        console.print(f"[red]deleted[/] {name}", highlight=False)
    console.print(
        f"{len(deleted)} deleted, {len(names) - len(deleted)} were not there", highlight=False
    )
