"""Helpers every command shares: consoles, clean errors, JSON output, loading a topology.

Why: scripts read this command's output. A table piped to a file is printed whole (rich
otherwise sizes it to the terminal on stderr and cuts cells with ``…``), every table has
a ``--json`` twin, and every failure is one line on stderr with a non-zero status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from pipeline.settings import Settings
from pipeline.topology import Topology, TopologyError, load_topology

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2

#: columns a table may use when stdout is not a terminal: wide enough that nothing is cut
PIPE_WIDTH = 4096

TopologyOption = Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")]


class _ScriptConsole(Console):
    """A console that is as wide as its content when its file is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)  # type: ignore[attr-defined]  # rich's property
        if self.is_terminal:
            return dims  # type: ignore[no-any-return]  # ConsoleDimensions
        return ConsoleDimensions(PIPE_WIDTH, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]  # rich's property


console: Console = _ScriptConsole()
err_console: Console = _ScriptConsole(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one error line without a stack trace and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_problem(exc: ValidationError) -> str:
    """pydantic's settings errors as one line: ``field: why; field: why``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def bootstrap_problem(servers: str) -> str | None:
    """Why a bootstrap list is not ``host:port[,host:port...]`` (None when it is)."""
    items = [item.strip() for item in servers.split(",")]
    if not any(items):
        return "empty"
    for item in items:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            shown = item if len(item) <= 60 else item[:57] + "..."
            return f"{shown!r} is not host:port (a port is a number from 1 to 65535)"
    return None


def make_settings(**overrides: object) -> Settings:
    """Settings from the environment and the given options (None: not given), checked;
    a bad value is one line and exit 2."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)  # type: ignore[arg-type]  # pydantic-settings accepts field kwargs
    except ValidationError as exc:
        fail(f"bad settings: {settings_problem(exc)}")
    problem = bootstrap_problem(settings.kafka_bootstrap_servers)
    if problem is not None:
        fail(f"--bootstrap (or CITYOPS_KAFKA_BOOTSTRAP_SERVERS): {problem}")
    return settings


def quiet_kafka_logs() -> None:
    """Keep the Kafka client's retry chatter (and its tracebacks) off a command's stderr:
    the command reports the failure itself, in one line (``--debug`` shows them)."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def print_json(document: Any) -> None:
    """One JSON document on stdout."""
    typer.echo(json.dumps(document, ensure_ascii=False, default=str))


def table_rows(table: Table) -> list[dict[str, str]]:
    """A rich table's rows as ``{column header: plain cell text}`` (markup removed)."""
    headers = [_plain(column.header) or f"column{n}" for n, column in enumerate(table.columns)]
    cells = [list(column.cells) for column in table.columns]
    return [
        {header: _plain(column[row]) for header, column in zip(headers, cells, strict=True)}
        for row in range(table.row_count)
    ]


def tables_json(tables: Iterable[Table]) -> dict[str, list[dict[str, str]]]:
    """Several titled tables as one JSON object: title -> rows."""
    return {_plain(table.title) or f"table{n}": table_rows(table) for n, table in enumerate(tables)}


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, str):
        return Text.from_markup(value).plain
    return str(value)


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
