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
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from pipeline.cli.common import EXIT_BAD_INPUT, EXIT_RUNTIME, console, fail, open_topology
from pipeline.kafka.admin import TopicAdminError, create_topics, delete_topics, list_topics
from pipeline.settings import Settings
from pipeline.topology import Topology

__all__ = ["topics_app"]

_T = TypeVar("_T")

topics_app = typer.Typer(
    name="topics",
    help="Create, list and delete the Kafka topics of a topology.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TopologyOption = Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")]
BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers (default: CITYOPS_KAFKA_BOOTSTRAP_SERVERS)."),
]


def _open(topology: Path, bootstrap: str | None) -> tuple[Topology, Settings]:
    try:
        settings = Settings(kafka_bootstrap_servers=bootstrap) if bootstrap else Settings()
    except ValidationError as exc:
        fail(f"bad settings: {exc}")
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
def list_command(topology: TopologyOption, bootstrap: BootstrapOption = None) -> None:
    """Show the plan's topics, which exist (with partitions), and unexpected ones."""
    topo, settings = _open(topology, bootstrap)
    plan = topo.topic_plan()
    present = _run(settings, list_topics(settings, topo.topics.prefix))
    table = Table(title=f"topics of {topo.id} (prefix {topo.topics.prefix!r})")
    table.add_column("topic", no_wrap=True)
    for column in ("partitions", "cleanup", "retention.ms", "status"):
        table.add_column(column)
    missing = 0
    for spec in plan:
        actual = present.get(spec.name)
        if actual is None:
            status, missing = "[red]missing[/]", missing + 1
            shown = str(spec.partitions)
        elif actual != spec.partitions:
            status, shown = "[yellow]partitions differ[/]", f"{actual} (plan {spec.partitions})"
        else:
            status, shown = "[green]exists[/]", str(actual)
        table.add_row(
            spec.name,
            shown,
            spec.config.get("cleanup.policy", ""),
            spec.config.get("retention.ms", ""),
            status,
        )
    planned = {spec.name for spec in plan}
    unexpected = sorted(name for name in present if name not in planned)
    for name in unexpected:
        table.add_row(name, str(present[name]), "", "", "[magenta]not in the topology[/]")
    longest = max((len(name) for name in (*planned, *unexpected)), default=0)
    # Whole topic names even when piped or on a narrow terminal: they are what people copy.
    Console(width=max(console.width, longest + 100)).print(table)
    console.print(
        f"{len(plan) - missing} of {len(plan)} planned topics exist; {missing} missing; "
        f"{len(unexpected)} unexpected under the prefix",
        highlight=False,
    )


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
