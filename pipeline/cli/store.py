"""``cityops store``: manage the aggregate store a topology names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from pipeline.settings import Settings
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
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="A ClickHouse cluster (<remote_servers>): replicated tables and Distributed "
            "tables over them, ON CLUSTER.",
        ),
    ] = None,
    print_only: Annotated[
        bool,
        typer.Option("--print", "--dry-run", help="Print the DDL instead of running it."),
    ] = False,
) -> None:
    """Create the database and the aggregates table (idempotent).

    The embedded store's directory is the topology's sinks.chdb.path under
    CITYOPS_DATA_DIR, or CITYOPS_CHDB_PATH, like the worker's."""
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
    if print_only:
        _print_ddl(topo.sinks, cluster)
        return
    if cluster is not None and topo.sinks.store != "clickhouse":
        _err.print(
            "--cluster needs the ClickHouse server store (sinks.store: clickhouse); the "
            "embedded store belongs to one process",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    store = _open(topo)
    try:
        _create(store, cluster)
    finally:
        store.close()
    _out.print(f"store ready: {store!r}", markup=False)


def _open(topo: Any) -> Any:
    """The topology's store, opened as the worker opens it (exit 2 when it cannot be)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        _err.print(f"bad settings: {exc}", markup=False)
        raise typer.Exit(2) from exc
    try:
        return open_store(topo.sinks, os.environ, chdb_path=settings.chdb_dir(topo.sinks.chdb.path))
    except StoreError as exc:
        _err.print(f"[red]{exc}[/red]", markup=False)
        raise typer.Exit(2) from exc


def _create(store: Any, cluster: str | None) -> None:
    """Create the tables (exit 1 when the store refuses or cannot be reached)."""
    try:
        if cluster is None:
            store.init()
        else:  # the server store (checked by the caller) takes a cluster
            store.init(cluster=cluster)
    except StoreUnavailable as exc:
        _err.print(f"store unavailable: {exc}", markup=False)
        raise typer.Exit(1) from exc
    except StoreError as exc:
        _err.print(f"store error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc


def _print_ddl(sinks: Any, cluster: str | None) -> None:
    """The statements ``init`` would run, ``;``-terminated, to stdout (nothing connects)."""
    from pipeline.sinks.clickhouse_cluster import cluster_statements
    from pipeline.sinks.clickhouse_sql import create_statements

    database = getattr(sinks, sinks.store).database
    try:
        statements = (
            cluster_statements(database, cluster)
            if cluster is not None
            else create_statements(database)
        )
    except StoreError as exc:
        _err.print(str(exc), markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    typer.echo("\n\n".join(f"{statement};" for statement in statements))
