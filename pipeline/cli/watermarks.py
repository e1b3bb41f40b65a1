"""``cityops watermarks``: each area's event-time watermark and lateness, from a running
worker (``GET /watermarks``).

Why: readings older than an area's watermark are dropped as late; when an area drops
readings, or its windows stop closing, this shows which sources hold it back (``behind``)
and which ones no longer count (``idle``), and how far each raw partition has got.
A worker answers for the partitions it owns: with several workers, ask each.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from pipeline.cli.common import (
    EXIT_RUNTIME,
    JsonOption,
    TopologyOption,
    console,
    fail,
    make_settings,
    open_topology,
    print_json,
)
from pipeline.cli.incidents import WorkerOption, get_json

__all__ = ["watermarks_command"]


def _sources(part: dict[str, Any]) -> str:
    listed = ", ".join(part["sources"])
    more = part["count"] - len(part["sources"])
    return listed + (f" (+{more})" if more > 0 else "")


def areas_table(doc: dict[str, Any], url: str) -> Table:
    """The areas of a ``/watermarks`` document as a table."""
    table = Table(title=f"watermarks from {url} (topology {doc['topology']})")
    for column in ("area", "name", "watermark (UTC)", "lateness", "behind", "idle", "late"):
        table.add_column(column)
    for area in doc["areas"]:
        table.add_row(
            area["area"],
            area["name"] or "",
            area["watermark"] or "-",
            f"{area['allowed_lateness_seconds']:g}s",
            _sources(area["behind"]),
            _sources(area["idle"]),
            str(area["late"]),
        )
    return table


def partitions_table(doc: dict[str, Any]) -> Table:
    """The raw partitions of a ``/watermarks`` document as a table."""
    table = Table(title="raw partitions")
    for column in ("partition", "progress (UTC)", "active sources", "idle sources"):
        table.add_column(column)
    for part in doc["partitions"]:
        table.add_row(
            part["partition"],
            part["progress"] or "-",
            str(part["active_sources"]),
            str(part["idle_sources"]),
        )
    return table


def watermarks_command(
    topology: TopologyOption,
    worker: WorkerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each area's watermark and allowed lateness, the sources behind and idle, and each
    raw partition's progress, from a running worker."""
    settings = make_settings()
    topo = open_topology(topology, settings)
    url = worker or f"http://127.0.0.1:{settings.web_port}"
    doc = get_json(url, "/watermarks")
    if not isinstance(doc, dict) or "areas" not in doc:
        fail(f"the worker at {url} gave no watermarks (is it a cityops worker?)", EXIT_RUNTIME)
    if doc.get("topology") != topo.id:
        fail(f"the worker at {url} runs topology {doc.get('topology')!r}, not {topo.id!r}")
    if as_json:
        print_json(doc)
        return
    console.print(areas_table(doc, url))
    console.print(partitions_table(doc))
