"""Run a real cityops worker as a subprocess, and read what it produced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.models import ReadingBatch
from tests.support.paths import ROOT


def sensor_key(value: bytes) -> bytes | None:
    """The sensor id of a canonical reading, as a raw topic's producer would key it."""
    try:
        sensor = orjson.loads(value).get("sensor_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return sensor.encode() if isinstance(sensor, str) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: aiokafka's line when a consumer joins a group generation.
_JOINED = re.compile(r"Joined group '(?P<group>[^']+)' \(generation (?P<generation>\d+)\)")

#: Log messages that mark a worker's phases (see `WorkerProcess.story`).
_MILESTONES = (
    "[^Worker]: Starting",
    "Joined group",
    "Worker ready",
    "[^Worker]: Stopping",
    "Closing event loop",
)


class WorkerProcess:
    """`cityops worker` in its own process, with its own group id, port and state dir."""

    def __init__(
        self,
        topology: Path,
        bootstrap: str,
        workdir: Path,
        *,
        prefix: str,
        worker_id: str,
        instance: str = "",
        env: dict[str, str] | None = None,
        module: str = "pipeline",
    ) -> None:
        """`instance` tells apart several workers of one group (log, state, store dirs);
        `module` is what `python -m` runs (the CLI, or a test wrapper around it)."""
        self.web_port = free_port()
        name = f"{worker_id}{instance}"
        self.log_path = workdir / f"{name}.log"
        self.args = [
            sys.executable, "-m", module, "worker",
            "--topology", str(topology), "--bootstrap", bootstrap,
            "--web-port", str(self.web_port), "--data-dir", str(workdir / name),
            "--worker-id", worker_id,
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "CITYOPS_TOPIC_PREFIX": prefix,
            "CITYOPS_CHDB_PATH": str(workdir / f"{name}-chdb"),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assigned(self, topic: str) -> set[int]:
        """The partitions of `topic` this worker was last given (from its log)."""
        pattern = re.compile(rf"topic='{re.escape(topic)}', partition=(\d+)")
        found: set[int] = set()
        for line in self.log().splitlines():
            if "Setting newly assigned partitions" in line and f"'{topic}'" in line:
                found = {int(p) for p in pattern.findall(line)}
        return found

    def ready_generation(self) -> int | None:
        """The generation of the Faust group (not the raw intake's) this worker last joined
        and then finished recovering in ("Worker ready" after the join), or None."""
        generation: int | None = None
        ready: int | None = None
        for line in self.log().splitlines():
            try:
                msg = str(orjson.loads(line).get("msg", ""))
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if (joined := _JOINED.search(msg)) and not joined["group"].endswith(".intake"):
                generation, ready = int(joined["generation"]), None
            elif "Worker ready" in msg:
                ready = generation
        return ready

    def story(self, limit: int = 60) -> str:
        """The log's milestones (each start, group join, readiness, stop) and every
        warning or error, one short timestamped line each: what a failure message needs
        to tell which phase a slow or stuck worker was in (the log's tail is mostly
        Faust's recovery tables)."""
        lines = []
        repeats: Counter[str] = Counter()  # an outage logs the same error thousands of times
        for line in self.log().splitlines():
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            msg = str(doc.get("msg", ""))
            level = str(doc.get("level", ""))
            if level in {"warning", "error", "critical"} or any(
                mark in msg for mark in _MILESTONES
            ):
                said = f"{level} {doc.get('logger', '')}: {msg[:200]}"
                repeats[said] += 1
                if repeats[said] > 1:
                    continue
                lines.append(f"{doc.get('ts', '?')} {said}")
                if level == "critical" and doc.get("exc"):  # why the worker gave up
                    lines.extend(f"    {exc}" for exc in str(doc["exc"]).splitlines()[-6:])
        again = [f"(then {n - 1} more of: {said})" for said, n in repeats.items() if n > 1]
        return "\n".join(lines[-limit:] + again[:10])

    def consumer(self) -> str:
        """The live worker's `/consumer` page (its input partitions as its Faust consumer
        sees them), or why it could not be read."""
        if not self.alive():
            return "(not running)"
        try:
            return self.get("/consumer")[1].decode(errors="replace")
        except OSError as exc:
            return f"(unreadable: {exc})"

    def get(self, path: str) -> tuple[int, bytes]:
        """A page of the worker's web server: (status, body); OSError when unreachable."""
        status, _, body = self.answer(path)
        return status, body

    def answer(self, path: str) -> tuple[int, Mapping[str, str], bytes]:
        """A page of the worker's web server with its headers: (status, headers, body);
        OSError when unreachable."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310  # our worker
                return int(answer.status), answer.headers, bytes(answer.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers, bytes(exc.read())

    def report(self, tail: int = 2000) -> str:
        """What an assertion about this worker should print: its milestones, its consumer's
        view of its partitions, then the log's last `tail` characters."""
        return (
            f"milestones:\n{self.story()}\n--- consumer ---\n{self.consumer()}\n"
            f"--- log tail ---\n{self.log()[-tail:]}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_ready(self) -> bool:
        """Whether `/readyz` answers 200 now (partitions assigned, tables recovered, intake
        and store up)."""
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the worker is ready (`is_ready`): a stop before that interrupts Faust's
        start-up."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.is_ready):
            assert self.alive(), self.report()
            if time.monotonic() > deadline:
                msg = f"the worker was not ready within {timeout:.0f} s\n{self.report()}"
                raise AssertionError(msg)
            await asyncio.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        """Stop the worker (TERM = warm shutdown); return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def both_ready(*workers: WorkerProcess, timeout: float = 60.0) -> None:
    """Until every worker has recovered in the same (latest) generation of the Faust group."""
    deadline = time.monotonic() + timeout
    while True:
        generations = {w.ready_generation() for w in workers}
        if len(generations) == 1 and None not in generations:
            return
        assert time.monotonic() < deadline, "".join(w.report() for w in workers)
        await asyncio.sleep(0.5)


async def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    headers: list[tuple[str, bytes]] | None = None,
    key: bytes | None = None,
    key_of: Callable[[bytes], bytes | None] | None = None,
) -> None:
    """Send raw values to a topic and wait until the broker has them all.

    Keys matter: a source keys each device's records by its id so they stay in order on
    one partition (`key_of` derives it per value; `key` is one key for all).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=value, key=key_of(value) if key_of else key, headers=headers
            )
            for value in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def events_in(topic: str, value: bytes) -> int:
    """Events one message carries: a readings batch counts its readings, a detection
    message its incident events, anything else (a stray value included) one."""
    if topic.endswith(".readings"):
        with contextlib.suppress(ValueError):
            return len(ReadingBatch.model_validate_json(value))
    elif topic.endswith(".incidents.events"):
        with contextlib.suppress(ValueError):
            return len(orjson.loads(value))
    return 1


def readings_in(values: Iterable[tuple[bytes | None, bytes]]) -> list[dict[str, Any]]:
    """The readings of readings-topic messages as JSON documents (strays skipped)."""
    docs: list[dict[str, Any]] = []
    for _, value in values:
        try:
            batch = ReadingBatch.model_validate_json(value)
        except ValueError:
            continue
        docs.extend(reading.model_dump(mode="json") for reading in batch.readings())
    return docs


async def consume_until(
    bootstrap: str,
    topics: list[str],
    expected: int,
    *,
    timeout: float = 90.0,
    settle: float = 3.0,
    worker: WorkerProcess | None = None,
) -> dict[str, list[tuple[bytes | None, bytes]]]:
    """Read topics from the start until `expected` events came (`events_in`), then `settle`
    seconds for extras."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    found: dict[str, list[tuple[bytes | None, bytes]]] = {topic: [] for topic in topics}
    total = 0
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if worker is not None and not worker.alive():
                msg = f"worker exited early:\n{worker.report()}"
                raise AssertionError(msg)
            batch = await consumer.getmany(timeout_ms=250)
            for tp, records in batch.items():
                found[tp.topic].extend((r.key, r.value) for r in records)
                total += sum(events_in(tp.topic, r.value) for r in records)
            if total >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        await consumer.stop()
    return found


async def committed_and_end(
    bootstrap: str, group: str, topic: str, partitions: int
) -> tuple[int, int]:
    """A consumer group's committed offsets summed over a topic's partitions, and the
    topic's end offsets summed (equal: the group has committed everything)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = [await consumer.committed(tp) for tp in tps]
        ends = await consumer.end_offsets(tps)
        return sum(c or 0 for c in committed), sum(ends.values())
    finally:
        await consumer.stop()


class TopicWatcher:
    """Reads a set of topics from the start and keeps every record by topic."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, metadata_max_age_ms=1000,
        )  # fmt: skip
        self.records: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def until(
        self, what: str, predicate: Any, worker: WorkerProcess, timeout: float = 90
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            if time.monotonic() > deadline:
                seen = {topic: len(records) for topic, records in self.records.items()}
                msg = f"timed out waiting for {what}; seen {seen}\n{worker.report()}"
                raise AssertionError(msg)
            assert worker.alive(), worker.report()
            await self.read()

    async def read(self) -> None:
        """One fetch (up to 0.3 s) into `records`."""
        batch = await self.consumer.getmany(timeout_ms=300)
        for tp, records in batch.items():
            self.records[tp.topic].extend(orjson.loads(r.value) for r in records)

    async def drain(self, timeout: float = 60) -> None:
        """Read every topic up to its end as of now (a predicate met on one topic says
        nothing of the others: a consumer of many topics fetches them in turns)."""
        parts = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await self.consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                msg = "timed out draining the watched topics"
                raise AssertionError(msg)
            await self.read()
