"""``cityops aggregates query``: windowed aggregates of one area and metric, newest last.

Why through the worker first: chDB allows one process per data directory, so while a
worker runs, its ``/aggregates`` endpoint is the way in. When no worker answers (nothing
listens on the port), the store the topology names is opened directly, honouring
CITYOPS_CHDB_PATH like the worker. City rows are rolled up from district rows by the
store (one SQL for both backends).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic import ValidationError
from rich.table import Table

from pipeline.cli.common import EXIT_RUNTIME, console, fail, open_topology
from pipeline.models import AggregateRow, AreaLevel
from pipeline.settings import Settings
from pipeline.sinks import StoreError, open_store
from pipeline.topology import Topology
from pipeline.topology.durations import parse_duration

aggregates_app = typer.Typer(help="Windowed aggregates in the store.", no_args_is_help=True)
QUERY_LEVELS = (AreaLevel.street, AreaLevel.district, AreaLevel.city)
WORKER_TIMEOUT = 2.0


@aggregates_app.callback()
def _group() -> None:
    """Windowed aggregates in the store."""


class WorkerUnavailable(Exception):
    """Nothing answered at the worker URL (connection refused, timeout)."""


class WorkerError(Exception):
    """The worker answered with an error."""


def fetch_from_worker(
    base_url: str, area: str, metric: str, level: AreaLevel, since: timedelta
) -> list[AggregateRow]:
    """Rows from a running worker's ``/aggregates`` endpoint."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"--worker must be an http(s) URL, got {base_url!r}"
        raise ValueError(msg)
    query = urllib.parse.urlencode(
        {"area": area, "metric": metric, "level": str(level), "since": since.total_seconds()}
    )
    url = f"{base_url.rstrip('/')}/aggregates?{query}"
    try:
        with urllib.request.urlopen(url, timeout=WORKER_TIMEOUT) as response:  # noqa: S310  # scheme checked above
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        msg = f"worker at {base_url} answered {exc.code}: {detail}"
        raise WorkerError(msg) from exc
    except (urllib.error.URLError, OSError) as exc:
        msg = f"no worker at {base_url}: {exc}"
        raise WorkerUnavailable(msg) from exc
    try:
        data = orjson.loads(body)
        return [AggregateRow.model_validate(row) for row in data["rows"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
        msg = f"worker at {base_url} sent an unexpected answer: {exc}"
        raise WorkerError(msg) from exc


def query_store(
    topology: Topology,
    settings: Settings,
    area: str,
    metric: str,
    level: AreaLevel,
    since: timedelta,
) -> list[AggregateRow]:
    """Rows straight from the store the topology names (``StoreError`` on failure)."""
    chdb_path = settings.chdb_dir(topology.sinks.chdb.path)
    store = open_store(topology.sinks, os.environ, chdb_path=chdb_path)
    try:
        now = datetime.now(UTC)
        return store.query(area, metric, now - since, now + timedelta(days=1), level)
    finally:
        store.close()


def render(rows: Sequence[AggregateRow], title: str) -> Table:
    """Rows as a rich table (window in UTC)."""
    table = Table(title=title)
    for column in ("window (UTC)", "count", "sum", "min", "max", "mean", "breaches"):
        window_column = column.startswith("window")
        table.add_column(column, justify="left" if window_column else "right", no_wrap=True)
    for row in rows:
        window = f"{row.window_start:%Y-%m-%d %H:%M:%S} – {row.window_end:%H:%M:%S}"
        table.add_row(
            window,
            str(row.count),
            f"{row.sum:.6g}",
            f"{row.min:.6g}",
            f"{row.max:.6g}",
            f"{row.mean:.6g}",
            str(row.breaches),
        )
    return table


@aggregates_app.command("query")
def query_command(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")],
    area: Annotated[str, typer.Option("--area", help="Area code (street, district or city).")],
    metric: Annotated[str, typer.Option("--metric", help="Metric name from the catalogue.")],
    since: Annotated[str, typer.Option("--since", help="How far back: 30m, 1h, 7d.")] = "1h",
    level: Annotated[
        str | None,
        typer.Option("--level", help="street, district or city (default: the area's level)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    worker: Annotated[
        str | None,
        typer.Option(
            "--worker",
            help="Worker base URL (default: http://127.0.0.1:<CITYOPS_WEB_PORT or 6066>, "
            "falling back to the store when nothing answers).",
        ),
    ] = None,
    store_only: Annotated[
        bool, typer.Option("--store", help="Skip the worker: open the store directly.")
    ] = False,
) -> None:
    """Print the windows of one area and metric since a time ago."""
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"bad settings: {exc}")
    topo = open_topology(topology, settings)
    try:
        window = parse_duration(since)
    except (ValueError, TypeError) as exc:
        fail(f"--since: {exc}")
    if not topo.has_area(area):
        fail(f"--area: unknown area {area!r} in topology {topo.id}")
    if metric not in topo.metrics:
        known = ", ".join(sorted(topo.metrics))
        fail(f"--metric: unknown metric {metric!r} (known: {known})")
    own = AreaLevel(topo.area(area).level)
    if level is not None and level not in {str(lv) for lv in QUERY_LEVELS}:
        fail(f"--level: {level!r} is not one of street, district, city")
    if level is not None and level != str(own):
        fail(f"--level: area {area} is a {own}, not a {level}")
    if own not in QUERY_LEVELS:
        fail(f"area {area} is a {own}: aggregates exist for streets, districts and the city")
    chosen = own

    rows: list[AggregateRow] | None = None
    origin = ""
    if not store_only:
        url = worker or f"http://127.0.0.1:{settings.web_port}"
        try:
            rows = fetch_from_worker(url, area, metric, chosen, window)
            origin = f"worker {url}"
        except ValueError as exc:
            fail(str(exc))
        except WorkerError as exc:
            fail(str(exc), EXIT_RUNTIME)
        except WorkerUnavailable as exc:
            if worker is not None:
                fail(str(exc), EXIT_RUNTIME)
    if rows is None:
        try:
            rows = query_store(topo, settings, area, metric, chosen, window)
        except StoreError as exc:
            fail(f"cannot read the store: {exc}", EXIT_RUNTIME)
        origin = f"store ({topo.sinks.store})"
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.model_dump(mode="json"), ensure_ascii=False))
        return
    area_name = topo.area(area).name_en or topo.area(area).name
    title = f"{metric} in {area} {area_name} ({chosen}), last {since} — {len(rows)} windows"
    console.print(render(rows, title))
    console.print(f"read from {origin}", highlight=False)
