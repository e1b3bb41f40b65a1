"""``cityops deadletter replay``: send dead-lettered originals back to where they came from.

Why: a dead letter keeps the refused record's bytes, its reason and its source topic;
after the fix (a producer corrected, a sensor added to the topology, a metric's range
widened) the same bytes go through again. Replay is at least once: every send waits for
the broker's acknowledgement (acks=all, idempotent producer) before it is counted, and a
replay stopped halfway can simply run again (the pipeline drops what it has already
applied, by event id and raw origin).

What is not replayed, and said so: a letter whose original was cut (it keeps only the
first 256 KiB and the SHA-256 of the whole: ``original_sha256`` set), and a letter whose
source is not a topic of the topology (a dry run's input file, another deployment).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pipeline.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_RUNTIME,
    console,
    err_console,
    fail,
    open_topology,
)
from pipeline.kafka.admin import list_topics
from pipeline.kafka.clients import client_options, output_producer
from pipeline.models import DeadLetter, RejectReason
from pipeline.settings import Settings
from pipeline.topology.durations import parse_duration

__all__ = ["deadletter_app"]

deadletter_app = typer.Typer(
    name="deadletter",
    help="Dead letters: replay their originals after a fix.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Header on every replayed record: the dead letter it came from (topic:partition:offset).
REPLAY_HEADER = "cityops-replayed-from"
#: Read dead letters from this long before `--since`: a letter is stamped before it is sent.
SEEK_MARGIN = timedelta(minutes=1)
#: Empty polls (half a second each) in a row after which reading is given up.
IDLE_POLLS = 60


@dataclass(frozen=True)
class Letter:
    """One dead letter as read from its topic."""

    partition: int
    offset: int
    key: bytes | None
    letter: DeadLetter

    @property
    def where(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass
class Selection:
    """What a replay found: letters to send, and letters it will not send, with why."""

    replay: list[Letter] = field(default_factory=list)
    skipped: list[tuple[Letter, str]] = field(default_factory=list)
    unreadable: int = 0

    def summary(self, *, dry_run: bool, replayed: int) -> dict[str, Any]:
        """The JSON document `--json` prints."""
        return {
            "dry_run": dry_run,
            "matched": len(self.replay) + len(self.skipped),
            "replayed": replayed,
            "to_replay": len(self.replay),
            "by_topic": dict(Counter(item.letter.source_topic or "" for item in self.replay)),
            "skipped": [
                {
                    "partition": item.partition,
                    "offset": item.offset,
                    "reason": str(item.letter.reason),
                    "why": why,
                }
                for item, why in self.skipped
            ],  # fmt: skip
            "unreadable": self.unreadable,
        }


def select(
    letters: Sequence[Letter],
    *,
    reasons: set[str],
    since: datetime,
    until: datetime,
    topics: set[str],
) -> Selection:
    """The letters of `reasons` received in [since, until), split into those to replay and
    those that cannot be (original cut, or a source outside the deployment's topics)."""
    chosen = Selection()
    for item in letters:
        letter = item.letter
        if str(letter.reason) not in reasons or not since <= letter.received_at < until:
            continue
        if letter.original_sha256 is not None:
            size = letter.original_size
            chosen.skipped.append((item, f"original truncated ({size} bytes, only a prefix kept)"))
        elif letter.source_topic not in topics:
            chosen.skipped.append((item, f"source {letter.source_topic!r} is not a topic here"))
        else:
            chosen.replay.append(item)
    return chosen


async def read_letters(settings: Settings, topic: str, since: datetime) -> tuple[list[Letter], int]:
    """Every dead letter on `topic` sent from `since` (less a margin) to the end the topic
    had when reading began; and how many records were no dead letter."""
    partitions = (await list_topics(settings.kafka_bootstrap_servers, topic)).get(topic)
    if not partitions:
        msg = f"topic {topic} does not exist"
        raise LookupError(msg)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        start_ms = int((since - SEEK_MARGIN).timestamp() * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
        for tp in tps:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
        letters: list[Letter] = []
        unreadable = 0
        idle = 0
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*tps, timeout_ms=500, max_records=1000)
            idle = 0 if batch else idle + 1
            if idle > IDLE_POLLS:
                msg = f"no dead letters arrived from {topic} for {IDLE_POLLS // 2} s"
                raise KafkaTimeoutError(msg)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    try:
                        letter = DeadLetter.model_validate_json(record.value or b"")
                    except ValidationError:
                        unreadable += 1
                        continue
                    letters.append(Letter(tp.partition, record.offset, record.key, letter))
        return letters, unreadable
    finally:
        await consumer.stop()


async def send_originals(
    settings: Settings, topic: str, letters: Sequence[Letter], progress: Progress
) -> int:
    """Send each letter's original to its source topic with the letter's key; return how
    many the broker acknowledged (all of them, or an error is raised)."""
    producer = output_producer(settings, client_id=f"{settings.worker_id}-deadletter-replay")
    await producer.start()
    task = progress.add_task("replaying", total=len(letters))
    acknowledged = 0
    try:
        for start in range(0, len(letters), 500):
            chunk = letters[start : start + 500]
            futures = [
                await producer.send(
                    item.letter.source_topic or "",
                    value=item.letter.original,
                    key=item.key,
                    headers=[(REPLAY_HEADER, f"{topic}:{item.where}".encode())],
                )
                for item in chunk
            ]
            await asyncio.gather(*futures)
            acknowledged += len(chunk)
            progress.update(task, completed=acknowledged)
    finally:
        await producer.stop()
    return acknowledged


def _moment(text: str | None, now: datetime, option: str) -> datetime:
    """A duration ago (`2h`) or an ISO 8601 time with a zone; now when not given."""
    if text is None:
        return now
    try:
        return now - parse_duration(text)
    except (ValueError, TypeError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: expected a duration (30m, 2h, 1d) or an ISO 8601 time, got {text!r}")
    if moment.tzinfo is None:
        fail(f"{option}: {text!r} has no time zone (add Z or +08:00)")
    return moment.astimezone(UTC)


def _reasons(values: Sequence[str]) -> set[str]:
    known = {str(reason) for reason in RejectReason}
    unknown = sorted(set(values) - known)
    if unknown:
        fail(f"--reason: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return set(values)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=False,
    )


def _report(selection: Selection, *, dry_run: bool, replayed: int, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(selection.summary(dry_run=dry_run, replayed=replayed)))
        return
    for item, why in selection.skipped:
        console.print(f"skipped {item.where} ({item.letter.reason}): {why}", highlight=False)
    by_topic = selection.summary(dry_run=dry_run, replayed=replayed)["by_topic"]
    for name, count in sorted(by_topic.items()):
        verb = "would replay" if dry_run else "replayed"
        console.print(f"{verb} {count} to {name}", highlight=False)
    console.print(
        f"{len(selection.replay) + len(selection.skipped)} dead letters matched; "
        f"{'0 sent (dry run)' if dry_run else f'{replayed} replayed'}, "
        f"{len(selection.skipped)} skipped",
        highlight=False,
    )


@deadletter_app.command("replay")
def replay_command(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")],
    reason: Annotated[
        list[str], typer.Option("--reason", "-r", help="Reason to replay (repeat for several).")
    ],
    since: Annotated[
        str, typer.Option("--since", help="Letters received since: 2h, 1d, or an ISO time.")
    ],
    until: Annotated[
        str | None, typer.Option("--until", help="...and before: 10m (ago) or an ISO time.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON summary on stdout.")] = False,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: CITYOPS_KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
) -> None:
    """Re-send the originals of dead letters of a reason to the topics they came from."""
    try:
        settings = Settings(kafka_bootstrap_servers=bootstrap) if bootstrap else Settings()
    except ValidationError as exc:
        fail(f"bad settings: {exc}")
    topo = open_topology(topology, settings)
    reasons = _reasons(reason)
    now = datetime.now(UTC)
    start, end = _moment(since, now, "--since"), _moment(until, now, "--until")
    if start >= end:
        fail("--since must be before --until")
    topic = topo.topics.name("deadletter")
    servers = settings.kafka_bootstrap_servers
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its retries: our message says it
    try:
        letters, unreadable = asyncio.run(read_letters(settings, topic, start))
    except LookupError as exc:
        fail(f"{exc} on {servers}: nothing to replay", EXIT_BAD_INPUT)
    except (KafkaError, OSError) as exc:
        fail(f"cannot reach Kafka at {servers} ({exc}); nothing was replayed", EXIT_RUNTIME)
    plan = {spec.name for spec in topo.topic_plan()}
    selection = select(letters, reasons=reasons, since=start, until=end, topics=plan)
    selection.unreadable = unreadable
    replayed = 0
    if selection.replay and not dry_run:
        try:
            with _progress() as progress:
                replayed = asyncio.run(send_originals(settings, topic, selection.replay, progress))
        except (KafkaError, OSError) as exc:
            fail(
                f"Kafka at {servers} failed during the replay ({exc}); some originals may "
                "have been sent: run the same command again (replay is at least once)",
                EXIT_RUNTIME,
            )
    _report(selection, dry_run=dry_run, replayed=replayed, as_json=as_json)
