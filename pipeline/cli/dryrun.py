"""``cityops dry-run``: the worker's stages over a file of raw messages, without Kafka.

Why: a data engineer changing a topology wants to see what a day of traffic would produce
(readings, dead letters and why, incidents and where they are routed, the audit trail,
aggregate rows) before deploying it. The dry run calls the very stage objects the worker's
agents call (`pipeline/engine/stages.py`), in the worker's order, with plain dicts as state, and
writes each output topic to ``<topic>.jsonl``.

How records flow (a queue, first in first out, like topics between agents):
raw line -> NormalizeStage; readings -> DetectStage and AggregateStage (key = the record's
key, the district); reports -> DetectStage; incident events -> LifecycleStage. An input
line may be an envelope ``{"topic", "key", "value"[, "headers"]}`` (the simulator's
output): its topic names a raw topic, or the incident-updates topic (handling units'
acknowledgements, resolutions) which goes to ``LifecycleStage.on_update``.

At end of input the detection watermark is the latest event time plus the widest area
window, the least that closes every window holding a reading (nothing can be late any
more, so lateness does not matter); every open aggregate window is closed too. SLA clocks
run on wall time in the worker and are not simulated.

Determinism: the same input gives the same bytes. The one wall-clock field, a dead
letter's ``received_at``, is set to the dry run's event clock (the latest event time seen
so far, the Unix epoch before the first event).
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from pipeline.cli.common import console, fail, open_topology
from pipeline.engine.emit import Emit, SourceRef
from pipeline.engine.stages import (
    AggregateStage,
    DetectStage,
    LifecycleStage,
    NormalizeStage,
    rows_to_jsonl,
)
from pipeline.ingest.adapters.registry import FORMAT_HEADER, FORMATS
from pipeline.models import (
    AggregateRow,
    CitizenReport,
    DeadLetter,
    Incident,
    Reading,
    Severity,
)
from pipeline.topology import AreaScope, Topology

FORMAT_CHOICES = ("auto", *FORMATS)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUMMARY_FILE = "summary.json"
AGGREGATES_FILE = "aggregates.jsonl"
#: Topics whose file is written even when empty (per-area incident topics only when used).
ALWAYS_WRITTEN = ("readings", "reports", "deadletter", "incidents_city", "incident_events", "audit")
_ENVELOPE_KEYS = frozenset(
    {"topic", "key", "value", "headers", "partition", "offset", "timestamp", "at_us", "fault"}
)


class InputError(ValueError):
    """The input file is not what a dry run reads (bad envelope, unknown topic)."""


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One message of the input: where it goes (None: a raw topic) and its bytes."""

    line: int
    topic: str | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def read_input(path: Path, topology: Topology, *, fmt: str = "auto") -> list[InputRecord]:
    """Every non-blank line of ``path`` as a record; ``fmt`` sets the format header.

    Raises ``InputError`` naming the line for an envelope the dry run cannot route, and
    ``OSError`` when the file cannot be read.
    """
    names = _routable_topics(topology)
    records: list[InputRecord] = []
    for number, raw_line in enumerate(path.read_bytes().split(b"\n"), start=1):
        line = raw_line.removesuffix(b"\r")
        if not line.strip():
            continue
        record = _parse_line(number, line, names)
        if fmt != "auto" and record.topic != topology.topics.name("incident_updates"):
            kept = tuple((k, v) for k, v in record.headers if k.lower() != FORMAT_HEADER)
            record = InputRecord(
                record.line, record.topic, record.key, record.value,
                (*kept, (FORMAT_HEADER, fmt.encode())),
            )  # fmt: skip
        records.append(record)
    return records


def _routable_topics(topology: Topology) -> dict[str, str]:
    """Envelope topic (full name or kind) -> full topic name."""
    names: dict[str, str] = {}
    for kind in ("raw_sensors", "raw_reports", "incident_updates"):
        full = topology.topics.name(kind)
        names[full] = names[kind] = full
    return names


def _parse_line(number: int, line: bytes, names: Mapping[str, str]) -> InputRecord:
    try:
        doc: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return InputRecord(number, None, None, line)
    if not _is_envelope(doc):
        return InputRecord(number, None, None, line)
    topic = names.get(doc["topic"])
    if topic is None:
        known = ", ".join(sorted(name for name in names if "." in name))
        msg = f"line {number}: envelope topic {doc['topic']!r} is not one of {known}"
        raise InputError(msg)
    key = doc.get("key")
    if key is not None and not isinstance(key, str):
        msg = f"line {number}: envelope key must be a string or null"
        raise InputError(msg)
    value = doc["value"]
    if isinstance(value, str):
        payload = value.encode()
    elif value is None:
        payload = b""
    else:
        payload = orjson.dumps(value)
    return InputRecord(
        number, topic, None if key is None else key.encode(), payload,
        _headers(number, doc.get("headers")),
    )  # fmt: skip


def _is_envelope(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("topic"), str)
        and "value" in doc
        and set(doc) <= _ENVELOPE_KEYS
    )


def _headers(number: int, headers: Any) -> tuple[tuple[str, bytes], ...]:
    if headers is None:
        return ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    out: list[tuple[str, bytes]] = []
    try:
        for name, value in pairs:
            out.append((str(name), str(value).encode() if value is not None else b""))
    except (TypeError, ValueError) as exc:
        msg = f"line {number}: envelope headers must be a mapping or a list of pairs"
        raise InputError(msg) from exc
    return tuple(out)


@dataclass(slots=True)
class DryRunResult:
    """What a dry run produced: every topic's values in order, rows, final incidents."""

    outputs: dict[str, list[bytes]]
    dead_letters: Counter[str]
    rows: list[AggregateRow]
    incidents: list[Incident]
    late_readings: int
    watermark: datetime | None


class DryRun:
    """The worker's stages wired by a queue instead of topics."""

    def __init__(
        self, topology: Topology, *, source_name: str = "input", max_message_bytes: int = 1_048_576
    ) -> None:
        self.topology = topology
        self.source_name = source_name
        self.outputs: dict[str, list[bytes]] = {}
        self.dead_letters: Counter[str] = Counter()
        self.rows: list[AggregateRow] = []
        self.clock = EPOCH
        self.latest_event: datetime | None = None
        self.normalize = NormalizeStage(topology, max_message_bytes=max_message_bytes)
        self.detect = DetectStage(topology, {}, {})
        self.aggregate = AggregateStage(topology, {})
        self.lifecycle = LifecycleStage(topology, {})
        name = topology.topics.name
        self._readings, self._reports = name("readings"), name("reports")
        self._events, self._updates = name("incident_events"), name("incident_updates")
        for kind in ALWAYS_WRITTEN:
            self.outputs[name(kind)] = []  # type: ignore[arg-type]  # a known kind

    def feed(self, record: InputRecord) -> None:
        """Run one input message and everything it causes downstream."""
        source = SourceRef(record.topic or self.source_name, None, record.line)
        if record.topic == self._updates:
            emits = self.lifecycle.on_update(record.value, source)
        else:
            emits = self.normalize.process(record.value, record.headers, source)
        self._drain(emits)

    def finish(self) -> DryRunResult:
        """End of input: close every detection and aggregate window; return the outputs."""
        watermark: datetime | None = None
        if self.latest_event is not None:
            watermark = self.latest_event + self._widest_area_window()
            self._drain(self.detect.finish(watermark))
        self.rows.extend(self.aggregate.finish())
        for stage in (self.detect, self.aggregate, self.lifecycle):
            stage.persist()  # the worker's serialization path, exercised once
        incidents = [
            record.incident
            for key in self.lifecycle.states.keys()
            if (record := self.lifecycle.states.peek(key)) is not None
        ]
        return DryRunResult(
            self.outputs, self.dead_letters, self.rows, incidents, self.aggregate.late, watermark
        )

    def _widest_area_window(self) -> timedelta:
        widths = [
            rule.scope.window for rule in self.topology.rules if isinstance(rule.scope, AreaScope)
        ]
        return max(widths, default=timedelta(0))

    def _drain(self, emits: Iterable[Emit]) -> None:
        queue: deque[Emit] = deque(emits)
        while queue:
            emit = queue.popleft()
            queue.extend(self._deliver(emit))

    def _deliver(self, emit: Emit) -> list[Emit]:
        """Record ``emit`` on its topic and return what its consumers emit in turn."""
        value = emit.value
        if emit.kind == "deadletter":
            self.dead_letters[emit.reason or "unknown"] += 1
            value = self._restamp(value)
        records = self.outputs.setdefault(emit.topic, [])
        offset = len(records)
        records.append(value)
        key = (emit.key or b"").decode()
        if emit.topic == self._readings:
            reading = Reading.model_validate_json(value)
            self._tick(reading.observed_at)
            self.rows.extend(self.aggregate.on_reading(key, reading))
            return self.detect.on_reading(key, reading)
        if emit.topic == self._reports:
            report = CitizenReport.model_validate_json(value)
            self._tick(report.reported_at)
            return self.detect.on_report(key, report)
        if emit.topic == self._events:
            return self.lifecycle.on_incident_event(value, SourceRef(emit.topic, None, offset))
        return []

    def _tick(self, at: datetime) -> None:
        if self.latest_event is None or at > self.latest_event:
            self.latest_event = at
            self.clock = at

    def _restamp(self, value: bytes) -> bytes:
        letter = DeadLetter.model_validate_json(value)
        return letter.model_copy(update={"received_at": self.clock}).model_dump_json().encode()


def run(
    topology: Topology, records: Iterable[InputRecord], *, source_name: str = "input"
) -> DryRunResult:
    """A whole dry run over ``records`` (no files written)."""
    dry = DryRun(topology, source_name=source_name)
    for record in records:
        dry.feed(record)
    return dry.finish()


def summarize(topology: Topology, result: DryRunResult, input_records: int) -> dict[str, Any]:
    """The ``summary.json`` document (no timings, so equal inputs give equal bytes)."""
    by_severity = Counter(str(incident.severity) for incident in result.incidents)
    by_state = Counter(str(incident.state) for incident in result.incidents)
    by_level = Counter(str(row.level) for row in result.rows)
    return {
        "topology": topology.id,
        "input_records": input_records,
        "topics": {topic: len(values) for topic, values in sorted(result.outputs.items())},
        "dead_letters": dict(sorted(result.dead_letters.items())),
        "incidents": {
            "total": len(result.incidents),
            "by_severity": {str(s): by_severity[str(s)] for s in Severity},
            "by_state": dict(sorted(by_state.items())),
        },
        "aggregates": {
            "rows": len(result.rows),
            "by_level": dict(sorted(by_level.items())),
            "late_readings": result.late_readings,
        },
        "watermark": None if result.watermark is None else result.watermark.isoformat(),
    }


def write_outputs(
    out: Path, topology: Topology, result: DryRunResult, input_records: int
) -> dict[str, Any]:
    """Write every topic file, ``aggregates.jsonl`` and ``summary.json``; return the summary.

    Files a previous dry run listed in ``out/summary.json`` are removed first, so a per-area
    topic that got records last time and none now leaves no stale file behind.
    """
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    files: list[str] = []
    for topic, values in sorted(result.outputs.items()):
        name = f"{topic}.jsonl"
        (out / name).write_bytes(b"".join(value + b"\n" for value in values))
        files.append(name)
    (out / AGGREGATES_FILE).write_bytes(rows_to_jsonl(result.rows))
    files.append(AGGREGATES_FILE)
    summary = summarize(topology, result, input_records)
    summary["files"] = sorted(files)
    text = json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    (out / SUMMARY_FILE).write_text(text, encoding="utf-8")
    return summary


def _remove_previous(out: Path) -> None:
    previous = out / SUMMARY_FILE
    try:
        listed = json.loads(previous.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    for name in listed:
        if isinstance(name, str) and "/" not in name and name.endswith(".jsonl"):
            (out / name).unlink(missing_ok=True)


def dry_run_command(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")],
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
    result = run(topo, records, source_name=input_file.name)
    try:
        summary = write_outputs(out, topo, result, len(records))
    except OSError as exc:
        fail(f"--out: cannot write to {out}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - started
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
