"""The Faust app: agents that move records between topics and the pure stages.

Why thin: every decision lives in a stage (`pipeline/engine/stages.py`) that `cityops dry-run`
runs too, so the worker and the dry run cannot disagree. An agent takes a batch of raw
messages, hands each to a stage, produces what the stages return in one batched send, and
persists the stages' changed state in changelog-backed tables. Three agents: `normalize`
(raw topics), `analyze` (readings and reports: detection and aggregation in one pass, one
decode per reading) and `lifecycle` (incident events and updates).

At-least-once: every topic is read as bytes (`value_serializer="raw"`), so decoding never
fails inside Faust (a decode error there is acknowledged and lost); a stage never raises
for bad input, it returns a dead letter. `stream.take_events()` acknowledges a batch only
after its body ran, and Faust flushes the producer (outputs and table changelogs) before
every commit, so an output is on the broker before the offset of its input is committed.
The analyze agent writes closed windows to the store inside the batch, retrying with
backoff through an outage, so its offsets never run ahead of what the store acknowledged;
open windows live in its table.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import faust
import orjson
from aiokafka.partitioner import murmur2
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError

from pipeline.engine.emit import Emit, SourceRef, origin_of
from pipeline.engine.stages import (
    AggregateStage,
    DetectStage,
    LifecycleStage,
    NormalizeStage,
    dead_letter,
    record_key_of,
)
from pipeline.kafka import recovery_fix
from pipeline.kafka.producer import BatchSender
from pipeline.metrics import Metrics, install_faust_metrics
from pipeline.models import (
    AggregateRow,
    AreaLevel,
    CitizenReport,
    Reading,
    Rejection,
    RejectReason,
    Severity,
)
from pipeline.settings import Settings
from pipeline.sinks import AggregateStore, StoreError, open_store
from pipeline.sinks.batching import Backoff, Batcher
from pipeline.topology import Topology

M = TypeVar("M", bound=BaseModel)


def broker_urls(bootstrap: str) -> list[str]:
    """`host1:9092,host2:9092` -> Faust's `kafka://` URL list."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def cityops_version() -> str:
    try:
        return version("cityops")
    except PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings, topology: Topology) -> faust.App:  # noqa: C901  # the wiring diagram
    """Build the worker for one topology; nothing connects until the worker starts."""
    recovery_fix.install()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        datadir=str(settings.data_dir / "faust"),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        topic_partitions=topology.topics.partitions,
        topic_replication_factor=topology.topics.replication,
        topic_disable_leader=True,
        table_standby_replicas=0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=False,
        web_in_thread=False,
    )
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    install_faust_metrics(app, registry)
    metrics.worker_info.info({"version": cityops_version(), "topology": topology.id})
    _preset_children(metrics, topology)
    outputs = Outputs(app, settings, metrics)
    send = outputs.send
    names = topology.topics.name

    def decode(model: type[M], raw: bytes, source: SourceRef, stage: str) -> M | Emit:
        """A record of an internal topic as its model, or its dead letter (someone else
        wrote to the topic, or an incompatible version did)."""
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            rejection = Rejection(reason=RejectReason.schema_violation, detail=str(exc)[:500])
            letter = dead_letter(topology, rejection, raw, source, stage=stage)
            _count(metrics, letter, stage)
            return letter

    def batches(stream: faust.StreamT[bytes]) -> Any:
        return stream.take_events(settings.batch_size, settings.batch_within_seconds)  # type: ignore[attr-defined]  # StreamT omits it

    transactional = settings.processing_guarantee == "exactly_once"
    tables: dict[str, _StateTable] = {}

    def table(name: str) -> _StateTable:
        faust_table = _state_table(app, name, topology.topics.partitions)
        tables[name] = _StateTable(faust_table, transactional=transactional)
        return tables[name]

    def changelog_records() -> list[ChangelogRecord]:
        return [record for state in tables.values() for record in state.drain()]

    normalize = NormalizeStage(topology, max_message_bytes=settings.max_message_bytes)
    detect = DetectStage(topology, table("detector"), table("clusters"))
    aggregate = AggregateStage(topology, table("windows"))
    lifecycle = LifecycleStage(topology, table("incidents"))
    open_gauge = OpenIncidentsGauge(metrics, lifecycle)
    stages_with_state = (detect, aggregate, lifecycle)

    raw_kind = {names("raw_sensors"): "raw_sensors", names("raw_reports"): "raw_reports"}
    raw_topics = app.topic(*raw_kind, key_serializer="raw", value_serializer="raw")
    normalize_latency = metrics.child(metrics.processing_latency, "normalize")

    @app.agent(raw_topics, name="normalize", concurrency=1)
    async def normalize_agent(stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream):
            async with unacknowledged_on_failure("normalize"):
                out: list[Emit] = []
                now = time.time()
                for event in events:
                    message = event.message
                    source = SourceRef(message.topic, message.partition, message.offset)
                    emits = normalize.process(message.value, message.headers or (), source)
                    kind = raw_kind.get(message.topic, "raw")
                    metrics.child(metrics.events_in, kind, normalize.last_format).inc()
                    for emit in emits:
                        _count(metrics, emit, "normalize")
                    out.extend(emits)
                    normalize_latency.observe(_age(message.timestamp, now))
                await send(out)

    store = _open_store(settings, topology)
    writer = StoreWriter(
        store, metrics, backend=topology.sinks.store, stopping=lambda: bool(app.should_stop)
    )
    internal_topics = app.topic(
        names("readings"), names("reports"), key_serializer="raw", value_serializer="raw"
    )

    late_log = LateReadingsLog()

    @app.agent(internal_topics, name="analyze", concurrency=1)
    async def analyze_agent(stream: faust.StreamT[bytes]) -> None:
        """Detection and aggregation in one pass: each reading is decoded once, and both
        states are keyed like it (by district), so they live in its partition."""
        async for events in batches(stream):
            async with unacknowledged_on_failure("analyze"):
                out: list[Emit] = []
                rows: list[AggregateRow] = []
                now = datetime.now(UTC)
                late_before = aggregate.late
                for event in events:
                    message = event.message
                    key = (message.key or b"").decode()
                    source = SourceRef(message.topic, message.partition, message.offset)
                    # A re-emitted event repeats its raw origin: the states apply it once.
                    applied = origin_of(message.headers) or source
                    if message.topic == names("readings"):
                        reading = decode(Reading, message.value, source, "analyze")
                        if isinstance(reading, Emit):
                            out.append(reading)
                            continue
                        metrics.event_time_lag.observe((now - reading.observed_at).total_seconds())
                        out.extend(detect.on_reading(key, reading, applied))
                        rows.extend(aggregate.on_reading(key, reading, applied))
                    else:
                        report = decode(CitizenReport, message.value, source, "analyze")
                        if isinstance(report, Emit):
                            out.append(report)
                            continue
                        out.extend(detect.on_report(key, report, applied))
                if aggregate.late != late_before:
                    metrics.late_events.inc(aggregate.late - late_before)
                    late_log.add(aggregate.late - late_before)
                await send(out)
                if rows:
                    metrics.windows_closed.inc(len(rows))
                    await writer.write(rows)
                detect.persist()
                aggregate.persist()
                await send(changelog_records())

    lifecycle_topics = app.topic(
        names("incident_events"), names("incident_updates"),
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    lifecycle_latency = metrics.child(metrics.processing_latency, "lifecycle")

    @app.agent(lifecycle_topics, name="lifecycle", concurrency=1)
    async def lifecycle_agent(stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream):
            async with unacknowledged_on_failure("lifecycle"):
                out: list[Emit] = []
                now = time.time()
                for event in events:
                    message = event.message
                    source = SourceRef(message.topic, message.partition, message.offset)
                    if message.topic == names("incident_events"):
                        emits = lifecycle.on_incident_event(message.value, source)
                    else:
                        emits = lifecycle.on_update(message.value, source)
                    for emit in emits:
                        _count(metrics, emit, "lifecycle")
                    out.extend(emits)
                    lifecycle_latency.observe(_age(message.timestamp, now))
                await send(out)
                lifecycle.persist()
                await send(changelog_records())
                open_gauge.refresh()

    @app.timer(settings.sla_check_seconds)  # type: ignore[untyped-decorator]  # faust is untyped
    async def sla_clock() -> None:
        emits = lifecycle.check_deadlines(datetime.now(UTC))
        for emit in emits:
            if (
                emit.kind == "incident"
                and emit.reason == "escalate"
                and emit.topic.endswith("incidents.city")
            ):
                metrics.sla_breaches.labels(*_severity_level(emit.value)).inc()
            _count(metrics, emit, "lifecycle")
        await send(emits)
        lifecycle.persist()
        await send(changelog_records())
        open_gauge.refresh()

    async def forget_cached_state(*_: Any, **__: Any) -> None:
        # Another worker may own (and change) these keys now; re-read them from the table.
        for stage in stages_with_state:
            stage.forget()
        normalize.forget()

    app.on_partitions_revoked.connect(forget_cached_state)

    @app.page("/aggregates")
    async def aggregates_page(web: Any, request: Any) -> Any:
        return await _aggregates_endpoint(web, request, store)

    @app.task  # type: ignore[untyped-decorator]  # faust is untyped
    async def init_store() -> None:
        with contextlib.suppress(StoppedMidBatch):  # stopped before the store came up
            await writer.write([])

    return app


@contextlib.asynccontextmanager
async def unacknowledged_on_failure(agent: str) -> AsyncIterator[None]:
    """Exit the process when an agent's batch fails unexpectedly, before Faust acknowledges it.

    Why: when the body of a Faust `take_events()` batch raises, Faust
    still acknowledges the batch and commits its offsets, so whatever the batch had not yet
    sent or stored would be lost. Stages never raise for bad input (it is dead-lettered)
    and outage paths retry, so an exception here is a defect or an unknown failure: exiting
    without the acknowledgement lets a restart (the supervisor's job) replay the batch
    instead. A stop requested while a batch waits for a dependency that is down exits with
    `EXIT_STOPPED_MID_BATCH`, also unacknowledged (Faust's warm shutdown would wait for
    that batch forever). Cancellation passes through.
    """
    try:
        yield
    except StoppedMidBatch as exc:
        log = logging.getLogger("pipeline.engine.worker.app")
        log.warning(
            "stopping with the %s agent's batch unfinished (%s); it is not acknowledged, so"
            " the next worker replays it",
            agent,
            exc,
        )
        logging.shutdown()
        os._exit(EXIT_STOPPED_MID_BATCH)
    except Exception:
        log = logging.getLogger("pipeline.engine.worker.app")
        log.critical(
            "the %s agent's batch failed; exiting before it is acknowledged, so a restart"
            " replays it",
            agent,
            exc_info=True,
        )
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


#: Exit status of a worker that stopped because a batch failed (EX_SOFTWARE).
EXIT_BATCH_FAILED = 70
#: Exit status of a worker asked to stop while a batch waited for an unavailable
#: dependency (EX_TEMPFAIL): the batch is replayed by the next worker.
EXIT_STOPPED_MID_BATCH = 75


class StoppedMidBatch(Exception):  # noqa: N818 - a stop, not an error
    """The worker is stopping while a batch still waits for something that is down."""


def _state_table(app: faust.App, name: str, partitions: int) -> Any:
    """A Faust table whose changelog entry for key `K` or `K<sep>state` goes to the
    partition Kafka's default partitioner gives the record key `K`: the partition of the
    records that change it, whoever produced them with the default partitioner (our
    normalizer's `KeyPartitioner` does)."""
    table_class = app.conf.Table

    @functools.lru_cache(maxsize=65_536)  # record keys (districts, categories) repeat
    def partition_of(record_key: str) -> int:
        return int(murmur2(record_key.encode()) & 0x7FFFFFFF) % partitions

    class _RecordKeyTable(table_class):  # type: ignore[misc,valid-type]  # faust is untyped
        def partition_for_key(self, key: Any) -> int | None:
            text = key.decode() if isinstance(key, bytes) else str(key)
            return partition_of(record_key_of(text))

    return app.tables.add(
        _RecordKeyTable(
            app, name=name, default=None, key_type=bytes, partitions=partitions,
            beacon=app.tables.beacon,
        )
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    """One table change bound for its changelog partition (None value: a deletion)."""

    topic: str
    key: bytes
    value: bytes | None
    partition: int


class _StateTable(MutableMapping[str, Any]):
    """A Faust table seen through str keys (what the stages use), whose changes are sent
    in the agent's batch.

    Why not `table[key] = value`: Faust sends one changelog record per assignment, with a
    future and its JSON codec each, which dominated the analyze agent once states were
    written per rule. Here a change updates the table's own store and queues the record
    (orjson, the same JSON Faust's codec reads back on recovery); the agent sends the
    queue with its outputs, before its batch is acknowledged. With `transactional` the
    table is written through Faust, whose transaction must carry every changelog record.

    Why a change is not stored in the table as well: the stage keeps the decoded state it
    changed, and reads the table only for a key it does not hold (after start-up or a
    rebalance, when Faust's recovery has read the changelog, our records included, up to
    its end). A second copy, as a dict or as JSON, cost ~1.5 KB per sensor (with 100,000
    sensors, 150 MB of peak RSS; JSON bytes even more, measured).
    """

    def __init__(self, table: Any, *, transactional: bool) -> None:
        self.table = table
        self.transactional = transactional
        self.pending: list[ChangelogRecord] = []
        self._topic = table.changelog_topic.get_topic_name()

    def __getitem__(self, key: str) -> Any:
        value = self.table.data.get(key.encode())
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        raw = key.encode()
        if self.transactional:
            self.table[raw] = value
            return
        partition = self.table.partition_for_key(raw)
        self.pending.append(ChangelogRecord(self._topic, raw, orjson.dumps(value), partition))

    def __delitem__(self, key: str) -> None:
        raw = key.encode()
        if self.transactional:
            del self.table[raw]
            return
        self.table.data.pop(raw, None)
        self.pending.append(
            ChangelogRecord(self._topic, raw, None, self.table.partition_for_key(raw))
        )

    def __iter__(self) -> Iterator[str]:
        return (key.decode() if isinstance(key, bytes) else str(key) for key in self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)

    def drain(self) -> list[ChangelogRecord]:
        """The queued changelog records (the queue is emptied)."""
        pending, self.pending = self.pending, []
        return pending


def _open_store(settings: Settings, topology: Topology) -> AggregateStore:
    try:
        return open_store(topology.sinks, os.environ, chdb_path=settings.chdb_path)
    except StoreError as exc:
        msg = f"cannot open the aggregate store: {exc}"
        raise SystemExit(msg) from exc


class StoreWriter:
    """Writes closed-window rows and waits until the store has acknowledged every one.

    Runs inside the analyze agent's batch, so the batch's offsets are acknowledged (and
    later committed) only after the store has its rows. The store is initialised on first
    use; while it is down or refuses, the writer backs off and retries without end (an
    escaping error would let Faust acknowledge the batch anyway), and Faust pauses
    consumption when its buffers fill.
    """

    def __init__(
        self,
        store: AggregateStore,
        metrics: Metrics,
        *,
        backend: str,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.backend = backend
        self.stopping = stopping
        self.batcher = Batcher(store, max_rows=10_000, max_age=1.0, backoff=Backoff(maximum=10.0))
        self.ready = False
        self.log = logging.getLogger("pipeline.sinks")
        self._lock = asyncio.Lock()  # the batcher is not thread-safe: one flush at a time

    async def _init(self) -> None:
        attempt = 0
        while not self.ready:
            try:
                await asyncio.to_thread(self.store.init)
            except StoreError as exc:
                attempt += 1
                delay = self.batcher.backoff.delay(attempt)
                self.metrics.store_failures.labels(self.backend).inc()
                self.log.warning("store init failed (%s); retrying in %.1fs", exc, delay)
                await self._pause(delay)
            else:
                self.ready = True

    async def write(self, rows: Sequence[AggregateRow]) -> None:
        """Queue `rows` and return once the store has everything queued so far."""
        async with self._lock:
            await self._write(rows)

    async def _write(self, rows: Sequence[AggregateRow]) -> None:
        await self._init()
        if rows:
            self.batcher.add(rows)
            self.metrics.store_batch_rows.observe(len(rows))
        attempt = 0
        while self.batcher.pending_rows:
            started = time.monotonic()
            try:
                outcome = await asyncio.to_thread(self.batcher.flush)
            except StoreError as exc:  # not retryable by the batcher: keep the rows, retry
                attempt += 1
                self.metrics.store_failures.labels(self.backend).inc()
                self.log.error("store write refused (%s); retrying", exc)
                await self._pause(self.batcher.backoff.delay(attempt))
                continue
            self.metrics.store_insert_seconds.labels(self.backend).observe(
                time.monotonic() - started
            )
            if outcome.error is not None:
                self.metrics.store_failures.labels(self.backend).inc()
                self.metrics.store_retries.labels(self.backend).inc()
                await self._pause(self.batcher.retry_in() or 0.5)

    async def _pause(self, seconds: float) -> None:
        """Wait before a retry, or raise `StoppedMidBatch` once the worker is stopping.

        Why: Faust's warm shutdown waits for every batch in flight to finish, and a batch
        waiting for a store that stays down never does; the stop would hang until the
        supervisor kills the worker.
        """
        deadline = time.monotonic() + seconds
        while True:
            if self.stopping():
                msg = "the worker is stopping while the store is unavailable"
                raise StoppedMidBatch(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.2))


class Outputs:
    """Where the agents' emits go, one call per batch.

    At-least-once: one `send_batch` per partition through the app's own producer (Faust
    flushes it before every commit), waiting for the broker's acknowledgement. Exactly-once:
    record by record through Faust, whose transaction manager must see every send.
    """

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.transactional = settings.processing_guarantee == "exactly_once"
        self.log = logging.getLogger("pipeline.engine.worker.app")
        self._topics: dict[str, faust.TopicT] = {}
        self._batches = BatchSender(self._producer, on_retry=self._retrying)

    def _producer(self) -> Any:
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer under Faust's

    def _retrying(self, error: BaseException, delay: float) -> None:
        self.log.error("the broker refused outputs (%s); retrying in %.1fs", error, delay)

    async def send(self, emits: Sequence[Emit | ChangelogRecord]) -> None:
        """Produce every emit; return once the broker has them (at-least-once)."""
        if not emits:
            return
        if not self.transactional:
            await self._batches.send_all(emits)
            return
        for emit in emits:
            topic = self._topics.get(emit.topic)
            if topic is None:
                topic = self._topics[emit.topic] = self.app.topic(
                    emit.topic, key_serializer="raw", value_serializer="raw"
                )
            headers = list(getattr(emit, "headers", ()))
            await topic.send(key=emit.key, value=emit.value, headers=headers)


def _preset_children(metrics: Metrics, topology: Topology) -> None:
    """Create the bounded label sets at zero, so "none yet" reads as 0, not as no data."""
    backend = str(topology.sinks.store)
    for counter in (metrics.store_failures, metrics.store_retries):
        counter.labels(backend)
    for severity in Severity:
        for level in (AreaLevel.street, AreaLevel.district, AreaLevel.city):
            metrics.sla_breaches.labels(str(severity), str(level))


def _count(metrics: Metrics, emit: Emit, stage: str) -> None:
    if emit.kind == "deadletter":
        metrics.child(metrics.dead_letters, stage, emit.reason or "unknown").inc()
        if emit.reason == RejectReason.duplicate:
            metrics.duplicates.inc()
    elif emit.kind in ("reading", "report"):
        metrics.child(metrics.normalized, emit.kind).inc()
    elif emit.kind == "incident" and emit.topic.endswith("incidents.city"):
        severity, level, district = _incident_labels(emit.value)
        metrics.incident_events.labels(emit.reason or "", severity, level, district).inc()


def _incident_labels(value: bytes) -> tuple[str, str, str]:
    data = orjson.loads(value)
    return (
        str(data.get("severity")),
        str(data.get("owner_level")),
        str((data.get("areas") or {}).get("district") or "none"),
    )


def _severity_level(value: bytes) -> tuple[str, str]:
    severity, level, _ = _incident_labels(value)
    return severity, level


class LateReadingsLog:
    """Warns about readings dropped as late, at most once per `every` seconds.

    Why a log line as well as the counter: a late drop changes what the store holds, and
    whoever reads a worker's log after a surprise should find it there."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.log = logging.getLogger("pipeline.aggregates.windows")
        self._pending = 0
        self._at = -every

    def add(self, count: int) -> None:
        self._pending += count
        now = time.monotonic()
        if now - self._at >= self.every:
            self.log.warning(
                "dropped %d readings later than the allowed lateness (their windows were"
                " closed already)",
                self._pending,
            )
            self._pending = 0
            self._at = now


class OpenIncidentsGauge:
    """Recounts open incidents by district and severity, at most once per `every` seconds
    (the count walks every local incident, so not after every batch)."""

    def __init__(self, metrics: Metrics, lifecycle: LifecycleStage, every: float = 1.0) -> None:
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.every = every
        self._at = -every

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._at < self.every:
            return
        self._at = now
        counts: Counter[tuple[str, str]] = Counter(
            (incident.areas.district or "none", str(incident.severity))
            for incident in self.lifecycle.open_incidents()
        )
        gauge = self.metrics.open_incidents
        gauge.clear()
        for (district, severity), count in counts.items():
            gauge.labels(district, severity).set(count)


def _age(timestamp: float | None, now: float) -> float:
    """Seconds from a Kafka record's timestamp (Faust gives seconds) to `now`."""
    if not timestamp:
        return 0.0
    return max(0.0, now - timestamp)


async def _aggregates_endpoint(web: Any, request: Any, store: AggregateStore) -> Any:
    """GET /aggregates?area=CODE&metric=M&since=3600[&level=district]: rows as JSON.

    chDB allows one process per data directory, so while a worker runs, `cityops
    aggregates query` reads through here.
    """
    query = request.query
    try:
        area, metric = query["area"], query["metric"]
        level = AreaLevel(query.get("level", "street"))
        since_s = float(query.get("since", "3600"))
    except (KeyError, ValueError) as exc:
        return web.json({"error": f"bad query: {exc}"}, status=400)
    until = datetime.now(UTC) + timedelta(days=1)
    since = datetime.now(UTC) - timedelta(seconds=since_s)
    try:
        rows = await asyncio.to_thread(store.query, area, metric, since, until, level)
    except StoreError as exc:
        return web.json({"error": str(exc)}, status=503)
    return web.json({"rows": [row.model_dump(mode="json") for row in rows]})
