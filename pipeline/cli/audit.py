"""``cityops audit verify``: check the hash chains of the audit trail, from Kafka or a file.

Why: the audit topic is the tamper-evident record of every incident transition; anyone
(an auditor, a downstream system) should be able to check it end to end without trusting
the worker. Exit codes: 0 every chain verifies, 1 a problem was found (or the broker could
not be read), 2 bad input (bad topology, unreadable file, a file with no audit events).

A record that does not parse as an audit event is itself a problem (``malformed``), named
by where it is: ``line N`` of a file, ``partition P offset O`` of the topic.

A redelivery (a later record with the same incident, seq and hash, byte for byte: what an
at-least-once worker sends again after a crash) is no problem; it is counted apart
(``redeliveries``). The same seq with other bytes is tampering (``duplicate``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
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
    quiet_kafka_logs,
    table_rows,
)
from pipeline.kafka.clients import Connection, bootstrap_of, client_options
from pipeline.models import AuditEvent
from pipeline.rules.audit import VerifyReport, verify

audit_app = typer.Typer(
    help="The tamper-evident audit trail of incident transitions.", no_args_is_help=True
)


@audit_app.callback()
def _group() -> None:
    """The tamper-evident audit trail of incident transitions."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One raw record of the trail and where it was read."""

    where: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record that is not an audit event."""

    where: str
    detail: str


def read_file(path: Path) -> list[AuditRecord]:
    """Every non-blank line of a JSONL file (``OSError`` when unreadable)."""
    lines = path.read_bytes().split(b"\n")
    return [
        AuditRecord(f"line {number}", line.removesuffix(b"\r"))
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


async def read_topic(
    bootstrap: Connection, topic: str, *, timeout: float = 30.0
) -> list[AuditRecord]:
    """Every record of ``topic`` from the beginning to the end offsets seen at start.

    No consumer group: nothing is committed, and no other reader is disturbed.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        int(part["partition"])
        for entry in described
        if entry.get("topic") == topic and entry.get("error_code") == 0
        for part in entry.get("partitions", [])
    ]
    if not partitions:
        msg = f"topic {topic} does not exist on {bootstrap_of(bootstrap)}"
        raise LookupError(msg)
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[AuditRecord] = []
        for tp in assigned:
            if ends[tp] == 0:
                continue
            position = await consumer.position(tp)
            while position < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=int(timeout * 1000))
                if not batch:
                    msg = f"no records from {tp.topic}[{tp.partition}] within {timeout:g}s"
                    raise TimeoutError(msg)
                for record in batch.get(tp, []):
                    if record.offset < ends[tp]:
                        where = f"partition {tp.partition} offset {record.offset}"
                        records.append(AuditRecord(where, record.value or b""))
                position = await consumer.position(tp)
        return records
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class Parsed:
    """The audit events in input order, where each was read and its bytes (aligned with
    ``events``), and the records that are not events."""

    events: list[AuditEvent]
    places: list[str]
    raw: list[bytes]
    malformed: list[Malformed]


def parse(records: list[AuditRecord]) -> Parsed:
    """Audit events in input order, where each was read, and the records that are not events."""
    parsed = Parsed([], [], [], [])
    events, places, malformed = parsed.events, parsed.places, parsed.malformed
    for record in records:
        try:
            events.append(AuditEvent.model_validate_json(record.value))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or "(record)"
            malformed.append(Malformed(record.where, f"{loc}: {first['msg']}"))
            continue
        places.append(record.where)
        parsed.raw.append(record.value)
    return parsed


def render(report: VerifyReport, places: list[str], malformed: list[Malformed]) -> Table | None:
    """The problems as a table (None when there are none)."""
    if report.ok and not malformed:
        return None
    table = Table(title="audit problems")
    for column in ("where", "incident", "seq", "problem", "detail"):
        table.add_column(column)
    for bad in malformed:
        table.add_row(bad.where, "", "", "malformed", escape(bad.detail))
    for problem in report.problems:
        where = places[problem.position] if 0 <= problem.position < len(places) else "(end)"
        table.add_row(
            where, problem.incident_id, str(problem.seq), str(problem.kind), escape(problem.detail)
        )
    return table


@audit_app.command("verify")
def verify_command(
    topology: TopologyOption,
    bootstrap: Annotated[
        str | None,
        typer.Option("--bootstrap", help="Kafka bootstrap servers (default: settings/env)."),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Read a JSONL file (e.g. a dry run's) instead of Kafka."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify every incident's hash chain; exit 1 naming each problem and where it is."""
    settings = make_settings(kafka_bootstrap_servers=bootstrap)
    quiet_kafka_logs()
    topo = open_topology(topology, settings)
    topic = topo.topics.name("audit")
    if from_file is not None:
        source = str(from_file)
        try:
            records = read_file(from_file)
        except OSError as exc:
            fail(f"--from-file: cannot read {from_file}: {exc.strerror or exc}")
    else:
        source = f"{topic} on {settings.kafka_bootstrap_servers}"
        try:
            records = asyncio.run(read_topic(settings, topic))
        except LookupError as exc:
            fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any client failure: report it, no trace
            fail(f"cannot read {source}: {type(exc).__name__}: {exc}", EXIT_RUNTIME)
    parsed = parse(records)
    malformed = parsed.malformed
    if records and not parsed.events:
        fail(f"{source}: no record is an audit event (first: {malformed[0].detail})")
    report = verify(parsed.events, raw=parsed.raw)
    table = render(report, parsed.places, malformed)
    summary = (
        f"{source}: {report.incidents} incidents, {report.events} events, "
        f"{len(report.problems) + len(malformed)} problems, {report.redeliveries} redeliveries"
    )
    if as_json:
        problems = [] if table is None else table_rows(table)
        print_json(
            {"ok": table is None, "source": source, "incidents": report.incidents,
             "events": report.events, "redeliveries": report.redeliveries,
             "problems": problems}
        )  # fmt: skip
        if table is not None:
            raise typer.Exit(EXIT_RUNTIME)
        return
    if table is None:
        console.print(f"[bold green]OK[/] {escape(summary)}", highlight=False)
        return
    console.print(table)
    console.print(f"[bold red]FAILED[/] {escape(summary)}", highlight=False)
    raise typer.Exit(EXIT_RUNTIME)
