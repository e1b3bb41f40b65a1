"""``cityops dry-run``: the worker's pipeline over a file, without Kafka (see
`pipeline/engine/local.py`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.common import JsonOption, TopologyOption, console, fail, open_topology, print_json
from pipeline.cli.progress import Bar, track
from pipeline.engine.local import (
    AGGREGATES_FILE,
    FORMAT_CHOICES,
    InputError,
    read_input,
    run,
    write_outputs,
)


def dry_run_command(
    topology: TopologyOption,
    input_file: Annotated[
        Path,
        typer.Option("--input", "-i", help="JSON lines: raw messages, or simulator envelopes."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the output files.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help=f"Input format ({', '.join(FORMAT_CHOICES)}); auto detects per line."
        ),
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline's stages over a file, without Kafka; write one file per topic."""
    if fmt not in FORMAT_CHOICES:
        fail(f"--format: {fmt!r} is not one of {', '.join(FORMAT_CHOICES)}")
    topo = open_topology(topology)
    if not input_file.exists():
        fail(f"--input: {input_file} does not exist")
    if not input_file.is_file():
        fail(f"--input: {input_file} is not a file")
    try:
        records = read_input(input_file, topo, fmt=fmt)
    except InputError as exc:
        fail(f"{input_file}: {exc}")
    except OSError as exc:
        fail(f"--input: cannot read {input_file}: {exc.strerror or exc}")
    if out.exists() and not out.is_dir():
        fail(f"--out: {out} exists and is not a directory")
    started = time.perf_counter()
    with Bar("records", len(records)) as bar:
        result = run(topo, track(records, bar), source_name=input_file.name)
    try:
        summary = write_outputs(out, topo, result, len(records))
    except OSError as exc:
        fail(f"--out: cannot write to {out}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - started
    if as_json:
        print_json({**summary, "out": str(out), "elapsed_s": round(elapsed, 3)})
        return
    _print_summary(summary, out, elapsed)


def _print_summary(summary: Mapping[str, Any], out: Path, elapsed: float) -> None:
    table = Table(title=f"dry run: {summary['input_records']} input records in {elapsed:.2f}s")
    table.add_column("output")
    table.add_column("records", justify="right")
    for topic, count in summary["topics"].items():
        table.add_row(f"{topic}.jsonl", str(count))
    aggregates = summary["aggregates"]
    levels = ", ".join(f"{level} {n}" for level, n in aggregates["by_level"].items())
    table.add_row(AGGREGATES_FILE, f"{aggregates['rows']}" + (f" ({levels})" if levels else ""))
    console.print(table)
    details = Table(show_header=True)
    details.add_column("dead letters by reason")
    details.add_column("", justify="right")
    details.add_column("incidents by severity")
    details.add_column("", justify="right")
    reasons = list(summary["dead_letters"].items()) or [("none", 0)]
    severities = [(s, n) for s, n in reversed(summary["incidents"]["by_severity"].items())]
    for index in range(max(len(reasons), len(severities))):
        reason = reasons[index] if index < len(reasons) else ("", "")
        severity = severities[index] if index < len(severities) else ("", "")
        details.add_row(str(reason[0]), str(reason[1]), str(severity[0]), str(severity[1]))
    console.print(details)
    late = aggregates["late_readings"]
    console.print(
        f"{summary['incidents']['total']} incidents; {late} late readings; files in {out}",
        highlight=False,
    )
