"""``cityops topology validate|show``: check a topology file and summarise what it deploys.

Why: data engineers edit topologies by hand; they need every error at once, by path, with
exit code 2 and no stack trace, and a readable picture of what a valid file implies
(areas, sensors, rules, SLAs and the topics it will create).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import (
    EXIT_BAD_INPUT,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    tables_json,
)
from pipeline.kafka.producer import key_partition
from pipeline.models import AreaLevel, Severity
from pipeline.topology import (
    AreaScope,
    Topology,
    TopologyError,
    load_topology,
    placement_warnings,
)
from pipeline.topology.durations import format_duration

topology_app = typer.Typer(
    name="topology",
    help="Validate and inspect topology files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_out = console
_err = err_console

FileArg = Annotated[
    Path | None,
    typer.Argument(help="Topology YAML file (the same as -t).", show_default=False),
]
FileOption = Annotated[
    Path | None, typer.Option("--topology", "-t", help="Topology YAML file.", show_default=False)
]


def _which(file: Path | None, topology: Path | None) -> Path:
    """`-t FILE` like every other command, or the positional FILE kept as an alias."""
    if file is not None and topology is not None and file != topology:
        fail(f"two topologies given ({file} and -t {topology}): give one")
    chosen = topology or file
    if chosen is None:
        fail("no topology: give -t FILE (or FILE)")
    return chosen


def _load(path: Path) -> Topology:
    """Load or exit 2 listing every error by path (also unreadable files, bad YAML)."""
    try:
        topology = load_topology(path)
        topology.boundary_features()
    except TopologyError as exc:
        count = len(exc.errors)
        noun = "error" if count == 1 else "errors"
        header = f"[bold red]{escape(str(path))}: invalid topology ({count} {noun})[/]"
        _err.print(header, highlight=False, soft_wrap=True)
        for where, message in exc.errors:
            line = f"  {where}: {message}" if where else f"  {message}"
            _err.print(line, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    return topology


def summary(topology: Topology) -> str:
    """One line: what the topology holds."""
    levels = Counter(a.level.value for a in topology.areas)
    plural = {"city": "cities", "community": "communities"}

    def count(level: str) -> str:
        word = level if levels[level] == 1 else plural.get(level, level + "s")
        return f"{levels[level]} {word}"

    areas = ", ".join(count(lv.value) for lv in AreaLevel if levels[lv.value])
    index = topology.grid_index()
    if topology.grid is not None and index is not None:
        areas += f"; grid {topology.grid.kind} resolution {topology.grid.resolution}"
        areas += f" ({len(index):,} cells)"
    return (
        f"{topology.id}: {areas}; {len(topology.sensors):,} sensors; "
        f"{len(topology.metrics)} metrics; {len(topology.rules)} rules; "
        f"{len(topology.report_categories)} report categories; "
        f"{len(topology.topic_plan())} topics"
    )


@topology_app.command("validate")
def validate_command(
    file: FileArg = None, topology: FileOption = None, as_json: JsonOption = False
) -> None:
    """Check a topology; print OK and a summary, or every error by path (exit 2).

    Warnings (valid, but surprising: located reports no boundary can place) follow the OK
    on stderr, by path, and in ``--json`` under ``warnings``; they never fail the check."""
    loaded = _load(_which(file, topology))
    warnings = placement_warnings(loaded)
    if as_json:
        print_json(
            {
                "ok": True,
                "id": loaded.id,
                "summary": summary(loaded),
                "warnings": [{"path": where, "message": message} for where, message in warnings],
            }
        )
        return
    _out.print(f"[bold green]OK[/] {summary(loaded)}", highlight=False, soft_wrap=True)
    for where, message in warnings:
        _err.print("[bold yellow]warning:[/] ", end="", highlight=False)
        _err.print(f"{where}: {message}", highlight=False, markup=False, soft_wrap=True)


@topology_app.command("show")
def show_command(
    file: FileArg = None, topology: FileOption = None, as_json: JsonOption = False
) -> None:
    """Summarise a topology: areas, sensors, metrics, rules, reports, SLAs, topics."""
    loaded = _load(_which(file, topology))
    tables = (
        _areas_table(loaded),
        _sensors_table(loaded),
        _metrics_table(loaded),
        _rules_table(loaded),
        _reports_table(loaded),
        _sla_table(loaded),
        _topics_table(loaded, whole=as_json),
    )
    if as_json:
        head = {"id": loaded.id, "name": loaded.name, "timezone": loaded.timezone}
        print_json({**head, "summary": summary(loaded), "tables": tables_json(tables)})
        return
    _out.print(f"[bold]{loaded.name}[/] ({loaded.id}, {loaded.timezone})", highlight=False)
    _out.print(summary(loaded), highlight=False)
    for table in tables:
        _out.print(table)


def _areas_table(topology: Topology) -> Table:
    table = Table(title="Areas per level")
    table.add_column("level")
    table.add_column("count", justify="right")
    table.add_column("examples")
    for level in AreaLevel:
        areas = topology.areas_at(level)
        if areas:
            names = ", ".join(f"{a.code} {a.name_en or a.name}" for a in areas[:4])
            more = f" … (+{len(areas) - 4})" if len(areas) > 4 else ""
            table.add_row(level.value, str(len(areas)), names + more)
    features = topology.boundary_features()
    table.caption = f"{len(features)} boundary polygons"
    if features.synthetic:
        synthetic = Counter(topology.area(code).level.value for code in features.synthetic)
        marked = ", ".join(f"{n} {level}" for level, n in sorted(synthetic.items()))
        table.caption += f", of which SYNTHETIC stand-ins: {marked}"
    return table


def _sensors_table(topology: Topology) -> Table:
    """Sensors per district, with the `readings` partition each district's key falls on
    and the sensors each partition carries: a partition's load, and so a worker's."""
    per_district: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {}
    for sensor in topology.sensors:
        codes = topology.admin_codes(sensor.area)
        district = codes.get(AreaLevel.district, codes.get(AreaLevel.city, sensor.area))
        per_district[district] += 1
        kinds.setdefault(district, Counter())[sensor.kind or "-"] += 1
    partitions = topology.topics.partitions
    partition_of = {code: key_partition(code.encode(), partitions) for code in per_district}
    load = [0] * partitions
    for code, count in per_district.items():
        load[partition_of[code]] += count
    table = Table(
        title=f"Sensors per district ({len(topology.sensors)})",
        caption=f"sensors per readings partition (0-{partitions - 1}): "
        + " / ".join(str(n) for n in load),
    )
    table.add_column("district")
    table.add_column("sensors", justify="right")
    table.add_column("partition", justify="right")
    table.add_column("kinds")
    for code in sorted(per_district):
        area = topology.area(code)
        label = f"{code} {area.name_en or area.name}"
        mix = ", ".join(f"{k} {n}" for k, n in sorted(kinds[code].items()))
        table.add_row(label, str(per_district[code]), str(partition_of[code]), mix)
    return table


def _metrics_table(topology: Topology) -> Table:
    table = Table(title="Metrics")
    for column in ("metric", "unit", "accepted", "range"):
        table.add_column(column)
    for name, metric in sorted(topology.metrics.items()):
        low, high = metric.range
        table.add_row(name, metric.unit, ", ".join(metric.accepted_units), f"{low:g} … {high:g}")
    return table


def _rules_table(topology: Topology) -> Table:
    table = Table(title="Rules")
    for column in ("rule", "metric", "scope", "condition", "levels", "for", "clear"):
        table.add_column(column)
    for rule in topology.rules:
        scope = rule.scope
        if isinstance(scope, AreaScope):
            where = f"{scope.area} {scope.statistic}/{format_duration(scope.window)}"
        else:
            where = "sensor"
        levels = []
        for level in rule.levels:
            if rule.condition == "outside":
                levels.append(f"{level.severity}:{level.low:g}…{level.high:g}")
            else:
                levels.append(f"{level.severity}:{level.threshold:g}")
        hold = rule.for_
        held = f"{hold.count}×" if hold.count is not None else format_duration(hold.duration)
        clear = rule.clear
        if clear is None:
            cleared = "-"
        elif isinstance(clear, float | int):
            cleared = f"{clear:g}"
        else:
            cleared = f"{clear.low:g}…{clear.high:g}"
        table.add_row(rule.id, rule.metric, where, rule.condition, " ".join(levels), held, cleared)
    return table


def _reports_table(topology: Topology) -> Table:
    table = Table(title="Report categories")
    for column in ("category", "name", "severity", "opens"):
        table.add_column(column)
    for category in topology.report_categories:
        cluster = category.cluster
        if category.urgent:
            opens = "at once (urgent)"
        elif cluster is not None:
            opens = (
                f"{cluster.count} within {cluster.radius_m:g} m / {format_duration(cluster.window)}"
            )
        else:
            opens = "never (recorded only)"
        if not category.urgent:
            opens += "; a report flagged urgent: " + (
                "at once" if category.honour_urgent_flag else "ignored"
            )
        table.add_row(category.id, category.name, category.severity.value, opens)
    return table


def _sla_table(topology: Topology) -> Table:
    table = Table(title="SLA by severity")
    for column in ("severity", "acknowledge", "resolve"):
        table.add_column(column)
    for severity in reversed(Severity):
        sla = topology.sla[severity]
        table.add_row(severity.value, format_duration(sla.ack), format_duration(sla.resolve))
    escalation = topology.escalation
    table.caption = (
        f"escalation {'on' if escalation.enabled else 'off'}, up to {escalation.top_level}; "
        f"aggregates every {format_duration(topology.aggregation.window)} at "
        f"{', '.join(lv.value for lv in topology.aggregation.levels)}"
    )
    return table


def _topics_table(topology: Topology, *, whole: bool = False) -> Table:
    plan = topology.topic_plan()
    table = Table(title=f"Topics ({len(plan)})")
    for column in ("topic", "partitions", "replication", "cleanup", "retention"):
        table.add_column(column)
    shown = plan if whole or len(plan) <= 30 else plan[:25]
    for spec in shown:
        ms = int(spec.config.get("retention.ms", "-1"))
        retention = "forever" if ms < 0 else format_duration(_ms(ms))
        table.add_row(
            spec.name,
            str(spec.partitions),
            str(spec.replication),
            spec.config.get("cleanup.policy", "delete"),
            retention,
        )
    if len(shown) < len(plan):
        table.caption = f"… and {len(plan) - len(shown)} more per-area incident topics"
    return table


def _ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)
