"""``cityops store``: manage the aggregate store a topology names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.sinks import StoreError, StoreUnavailable, open_store

store_app = typer.Typer(
    help="The aggregate store (chDB or a ClickHouse server).", no_args_is_help=True
)
_err = Console(stderr=True)
_out = Console()


@store_app.command("init")
def init(
    topology: Annotated[
        Path, typer.Option("--topology", "-t", help="Topology YAML whose sinks name the store.")
    ],
) -> None:
    """Create the database and the aggregates table (idempotent)."""
    from pipeline.topology import TopologyError, load_topology

    try:
        topo = load_topology(topology)
    except TopologyError as exc:
        _err.print(f"[red]invalid topology {topology}:[/red]")
        _err.print(str(exc), markup=False)
        raise typer.Exit(2) from exc
    except OSError as exc:
        _err.print(f"[red]cannot read {topology}: {exc.strerror}[/red]")
        raise typer.Exit(2) from exc
    try:
        store = open_store(topo.sinks, os.environ)
    except StoreError as exc:
        _err.print(f"[red]{exc}[/red]", markup=False)
        raise typer.Exit(2) from exc
    try:
        store.init()
    except StoreUnavailable as exc:
        _err.print(f"store unavailable: {exc}", markup=False)
        raise typer.Exit(1) from exc
    except StoreError as exc:
        _err.print(f"store error: {exc}", markup=False)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    _out.print(f"store ready: {store!r}", markup=False)
