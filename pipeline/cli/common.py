"""Helpers every command shares: loading a topology with a clean error, and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from pipeline.settings import Settings
from pipeline.topology import Topology, TopologyError, load_topology

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print an error without a stack trace and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def open_topology(path: Path, settings: Settings | None = None) -> Topology:
    """Load a topology or exit 2 listing every error by path; apply settings' overrides."""
    try:
        topology = load_topology(path)
    except TopologyError as exc:
        err_console.print(f"[bold red]{path}: the topology is invalid[/]", highlight=False)
        for where, message in exc.errors:
            err_console.print(f"  {where}: {message}", highlight=False, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    if settings is not None and settings.topic_prefix is not None:
        topics = topology.topics.model_copy(update={"prefix": settings.topic_prefix})
        topology = topology.model_copy(update={"topics": topics})
    return topology
