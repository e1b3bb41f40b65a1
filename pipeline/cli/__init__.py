"""The `cityops` command: one root app, one sub-app or command per module in this package.

Errors: every failure is one line on stderr with a non-zero status (1 runtime, 2 bad
input), never a traceback; ``--debug`` (or ``CITYOPS_DEBUG=1``) adds the traceback and
the Kafka client's own log lines.
"""

from __future__ import annotations

import logging
import traceback
from typing import Annotated, Any

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from pipeline import cityops_version
from pipeline.cli.acl import acl_app
from pipeline.cli.aggregates import aggregates_app
from pipeline.cli.audit import audit_app
from pipeline.cli.common import EXIT_RUNTIME, err_console
from pipeline.cli.deadletter import deadletter_app
from pipeline.cli.dryrun import dry_run_command
from pipeline.cli.incidents import incidents_app
from pipeline.cli.run import demo_command, tail_command, worker_command
from pipeline.cli.schemas import schemas_app
from pipeline.cli.simulate import simulate_command
from pipeline.cli.store import store_app
from pipeline.cli.topics import topics_app
from pipeline.cli.topology import topology_app
from pipeline.cli.watermarks import watermarks_command

__all__ = ["app", "main", "one_line"]


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one short line: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class _CleanErrors(TyperGroup):
    """The root group: an exception no command handled becomes one line, not a traceback."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            raise typer.Abort from None
        except Exception as exc:
            if ctx.params.get("debug"):
                err_console.print(traceback.format_exc(), markup=False, highlight=False)
            hint = "" if ctx.params.get("debug") else " (--debug shows the traceback)"
            err_console.print(
                f"[bold red]error:[/] {one_line(exc)}{hint}",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_RUNTIME) from exc


app = typer.Typer(
    name="cityops",
    help="Unified city operations: topologies, workers, simulator, dry runs, aggregates.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=_CleanErrors,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cityops {cityops_version()}")
        raise typer.Exit


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="CITYOPS_DEBUG", help="Show tracebacks and client logs on errors."
        ),
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Unified city operations: topologies, workers, simulator, dry runs, aggregates."""
    if debug:
        logging.basicConfig(level=logging.DEBUG)


app.command("worker")(worker_command)
app.command("demo")(demo_command)
app.command("simulate")(simulate_command)
app.command("dry-run")(dry_run_command)
app.command("tail")(tail_command)
app.command("watermarks")(watermarks_command)
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
