"""The `cityops` command: one root app, one sub-app or command per module in this package."""

from __future__ import annotations

import typer

from pipeline.cli.acl import acl_app
from pipeline.cli.aggregates import aggregates_app
from pipeline.cli.audit import audit_app
from pipeline.cli.deadletter import deadletter_app
from pipeline.cli.dryrun import dry_run_command
from pipeline.cli.incidents import incidents_app
from pipeline.cli.run import demo_command, tail_command, worker_command
from pipeline.cli.schemas import schemas_app
from pipeline.cli.simulate import simulate_command
from pipeline.cli.store import store_app
from pipeline.cli.topics import topics_app
from pipeline.cli.topology import topology_app

app = typer.Typer(
    name="cityops",
    help="Unified city operations: topologies, workers, simulator, dry runs, aggregates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("worker")(worker_command)
app.command("demo")(demo_command)
app.command("simulate")(simulate_command)
app.command("dry-run")(dry_run_command)
app.command("tail")(tail_command)
app.add_typer(topology_app, name="topology")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(store_app, name="store")
app.add_typer(audit_app, name="audit")
app.add_typer(aggregates_app, name="aggregates")
app.add_typer(incidents_app, name="incidents")
app.add_typer(acl_app, name="acl")
app.add_typer(deadletter_app, name="deadletter")


def main() -> None:
    """Console-script entry point."""
    app()
