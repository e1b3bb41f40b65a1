"""The local engine: the worker's pipeline over a file of raw messages, without Kafka.

Why: a data engineer changing a topology wants to see what a day of traffic would produce
(readings, dead letters and why, incidents and where they are routed, the audit trail,
aggregate rows) before deploying it, and the tests want the worker's exact decisions
without a broker. `LocalEngine` runs the worker's own `Pipeline` (`engine/routing.py`),
with plain dicts as state, and `cityops dry-run` writes each output topic to
``<topic>.jsonl``.

How records flow (a queue, first in first out, like topics between consumers): raw lines
-> normalize (in batches); readings batches -> detection and aggregation (key = the
record's key, the district); reports -> detection; incident events -> the lifecycle. An
input line may be an envelope ``{"topic", "key", "value"[, "headers"]}`` (the simulator's
output): its topic names a raw topic, or the incident-updates topic (handling units'
acknowledgements, resolutions), whose records go to the lifecycle.

At end of input the detection watermark is the latest event time plus the widest area
window, the least that closes every window holding a reading (nothing can be late any
more, so lateness does not matter); every open aggregate window is closed too. SLA clocks
run on wall time in the worker and are not simulated.

Determinism: the same input gives the same bytes. The one wall-clock field, a dead
letter's ``received_at``, is set to the engine's event clock (the latest event time seen
so far, the Unix epoch before the first event).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.aggregates.codec import from_micros
from pipeline.engine.emit import Emit, Record
from pipeline.engine.routing import Output, Pipeline
from pipeline.engine.stages import rows_to_jsonl
from pipeline.ingest.adapters.registry import FORMAT_HEADER, FORMATS
from pipeline.models import (
    AggregateRow,
    CitizenReport,
    DeadLetter,
    Incident,
    Severity,
    StoreRow,
    row_model,
)
from pipeline.topology import Topology

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
    """One message of the input: where it goes (None: a raw topic), its bytes, and when it
    arrived (an envelope's ``timestamp``, milliseconds, as Kafka would stamp it)."""

    line: int
    topic: str | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


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
            record = replace(record, headers=(*kept, (FORMAT_HEADER, fmt.encode())))
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
    stamp = doc.get("timestamp")
    if stamp is not None and (not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 0):
        msg = f"line {number}: envelope timestamp must be milliseconds since the epoch"
        raise InputError(msg)
    return InputRecord(
        number, topic, None if key is None else key.encode(), payload,
        _headers(number, doc.get("headers")), stamp,
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
    events: Counter[str]
    """Events per topic (a readings batch counts its readings)."""
    dead_letters: Counter[str]
    rows: list[AggregateRow]
    incidents: list[Incident]
    late_readings: int
    watermark: datetime | None


class LocalEngine:
    """The worker's pipeline wired by a queue instead of topics.

    Raw input records are normalized in batches of `batch_size` (the worker's intake
    batches by what one fetch returns: the outputs do not depend on where batches end);
    an update record first flushes the raw records before it, so input order holds. Every
    message a stage emits is delivered to the stage that reads its topic, first in first
    out, like topics between consumers.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        source_name: str = "input",
        max_message_bytes: int = 1_048_576,
        batch_size: int = 500,
    ) -> None:
        self.topology = topology
        self.source_name = source_name
        self.batch_size = batch_size
        self.outputs: dict[str, list[bytes]] = {}
        self.events: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.rows: list[StoreRow] = []
        self.late = 0
        self.clock = EPOCH
        self.latest_event: datetime | None = None
        self.pipeline = Pipeline(topology, lambda _name: {}, max_message_bytes=max_message_bytes)
        self.pipeline.alias(source_name, topology.topics.name("raw_sensors"))
        self._pending: list[Record] = []
        name = topology.topics.name
        self._updates = name("incident_updates")
        for kind in ALWAYS_WRITTEN:
            self.outputs[name(kind)] = []  # type: ignore[arg-type]  # a known kind

    def feed(self, record: InputRecord) -> None:
        """Take one input message; raw ones wait for their batch."""
        topic = record.topic or self.source_name
        as_record = Record(
            topic, record.key, record.value, record.headers, None, record.line,
            record.timestamp_ms,
        )  # fmt: skip
        if record.topic == self._updates:
            self.flush()
            self._run([as_record])
            return
        self._pending.append(as_record)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Normalize the raw records waiting for their batch, and all they cause."""
        pending, self._pending = self._pending, []
        if pending:
            self._run(pending)

    def finish(self) -> DryRunResult:
        """End of input: close every detection and aggregate window; return the outputs."""
        self.flush()
        watermark: datetime | None = None
        if self.latest_event is not None:
            watermark = self.latest_event + self.pipeline.detect.horizon()
        self._drain(self.pipeline.finish(watermark))
        self.pipeline.persist()  # the worker's serialization path, exercised once
        states = self.pipeline.lifecycle.states
        incidents = [
            record.incident for key in states.keys() if (record := states.peek(key)) is not None
        ]
        return DryRunResult(
            self.outputs,
            self.events,
            self.dead_letters,
            [row_model(row) for row in self.rows],
            incidents,
            self.late,
            watermark,
        )

    def _run(self, records: list[Record]) -> None:
        self._drain(self.pipeline.handle(records))

    def _drain(self, first: Output) -> None:
        queue: deque[Output] = deque([first])
        while queue:
            out = queue.popleft()
            self.rows.extend(out.rows)
            self.late += out.late
            if out.event_times_us:
                self._tick(from_micros(max(out.event_times_us)))
            for emit in out.emits:
                if emit.kind == "report":  # reports move the event clock too
                    self._tick(CitizenReport.model_validate_json(emit.value).reported_at)
            for emit in out.emits:
                record = self._record(emit)
                if record.topic in self.pipeline.routes:
                    queue.append(self.pipeline.handle([record]))

    def _record(self, emit: Emit) -> Record:
        """Write `emit` to its topic's output and return it as the record consumers read."""
        value = emit.value
        if emit.kind == "deadletter":
            self.dead_letters[emit.reason or "unknown"] += 1
            value = self._restamp(value)
        self.events[emit.topic] += emit.count
        records = self.outputs.setdefault(emit.topic, [])
        records.append(value)
        return Record(emit.topic, emit.key, value, emit.headers, None, len(records) - 1)

    def _tick(self, at: datetime) -> None:
        if self.latest_event is None or at > self.latest_event:
            self.latest_event = at
            self.clock = at

    def _restamp(self, value: bytes) -> bytes:
        letter = DeadLetter.model_validate_json(value)
        return letter.model_copy(update={"received_at": self.clock}).model_dump_json().encode()


def run(
    topology: Topology,
    records: Iterable[InputRecord],
    *,
    source_name: str = "input",
    batch_size: int = 500,
) -> DryRunResult:
    """A whole dry run over ``records`` (no files written)."""
    engine = LocalEngine(topology, source_name=source_name, batch_size=batch_size)
    for record in records:
        engine.feed(record)
    return engine.finish()


def summarize(topology: Topology, result: DryRunResult, input_records: int) -> dict[str, Any]:
    """The ``summary.json`` document (no timings, so equal inputs give equal bytes)."""
    by_severity = Counter(str(incident.severity) for incident in result.incidents)
    by_state = Counter(str(incident.state) for incident in result.incidents)
    by_level = Counter(str(row.level) for row in result.rows)
    return {
        "topology": topology.id,
        "input_records": input_records,
        "topics": {topic: result.events[topic] for topic in sorted(result.outputs)},
        "messages": {topic: len(values) for topic, values in sorted(result.outputs.items())},
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
