"""Commands that run things: a worker, the demo (`make run`), and a topic tail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rich.live import Live
from rich.table import Table

from pipeline.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_RUNTIME,
    console,
    fail,
    make_settings,
    open_topology,
    quiet_kafka_logs,
)
from pipeline.kafka.admin import TopicAdminError, create_topics, list_topics
from pipeline.kafka.clients import Connection, client_options
from pipeline.settings import Settings
from pipeline.sim.encoders import FORMATS
from pipeline.topology import TOPIC_KINDS, Topology

TopologyOption = Annotated[
    Path, typer.Option("--topology", "-t", help="Topology YAML file.", exists=False)
]
BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap servers (default: settings/env)."),
]

#: How far in the past the demo's simulated time starts (it catches up with the clock).
DEMO_LEAD = timedelta(minutes=9)


def _settings(**overrides: object) -> Settings:
    return make_settings(**overrides)


def port_in_use(host: str, port: int) -> str | None:
    """Why the worker could not listen on ``host:port`` (None when it can)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def worker_command(
    topology: TopologyOption,
    bootstrap: BootstrapOption = None,
    web_port: Annotated[int | None, typer.Option(help="HTTP port for /metrics.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for worker state.")] = None,
    worker_id: Annotated[str | None, typer.Option(help="Faust app id = consumer group.")] = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    log_format: Annotated[
        str, typer.Option(help="json (one object per line, personal data masked) or text.")
    ] = "json",
    create_missing_topics: Annotated[
        bool, typer.Option(help="Create the topology's missing topics before starting.")
    ] = True,
) -> None:
    """Run a worker: consume the topology's raw topics and produce every output."""
    # Faust is heavy: only this command imports it.
    from pipeline.engine.worker.app import create_app, run_worker
    from pipeline.logging import configure_logging

    settings = _settings(
        kafka_bootstrap_servers=bootstrap,
        web_port=web_port,
        data_dir=data_dir,
        worker_id=worker_id,
        topology=topology,
    )
    topo = open_topology(topology, settings)
    if log_format not in ("json", "text"):
        fail(f"--log-format: expected json or text, got {log_format!r}")
    busy = port_in_use(settings.web_host, settings.web_port)
    if busy is not None:
        fail(
            f"web port {settings.web_host}:{settings.web_port} cannot be used ({busy}); "
            "choose another with --web-port or CITYOPS_WEB_PORT",
            EXIT_RUNTIME,
        )
    configure_logging(
        loglevel.upper(),
        json=log_format == "json",
        worker=settings.worker_id,
        topology=topo.id,
        secrets=settings.secrets(),
    )
    if create_missing_topics:
        try:
            asyncio.run(create_topics(settings, topo.topic_plan()))
        except (TopicAdminError, KafkaError, OSError) as exc:
            fail(
                f"cannot prepare topics on {settings.kafka_bootstrap_servers}: {exc}", EXIT_RUNTIME
            )
    run_worker(create_app(settings, topo), loglevel, settings.stop_timeout_seconds)


def tail_command(
    topic: Annotated[
        str,
        typer.Argument(
            help="Topic kind (readings, reports, deadletter, incidents_city, audit, ...), "
            "short name (sensors.raw, incidents.district.310101) or full name."
        ),
    ],
    topology: TopologyOption,
    bootstrap: BootstrapOption = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest record.")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many records (0 = never).")] = 0,
) -> None:
    """Print a topic's records as JSON lines (Ctrl-C to stop)."""
    settings = _settings(kafka_bootstrap_servers=bootstrap)
    topo = open_topology(topology, settings)
    name = resolve_topic(topo, topic)
    if name is None:
        fail(
            f"unknown topic {topic[:80]!r}: give a kind ({', '.join(TOPIC_KINDS)}), a name "
            f"without the prefix (sensors.raw, incidents.district.<code>) or a full name "
            f"of the topology's plan (prefix {topo.topics.prefix!r})",
            EXIT_BAD_INPUT,
        )
    quiet_kafka_logs()
    where = settings.kafka_bootstrap_servers
    try:
        present = asyncio.run(list_topics(settings, name))
        if name not in present:
            fail(
                f"topic {name} does not exist on {where}: run `cityops topics create -t "
                f"{topology}` (or start a worker) first",
                EXIT_RUNTIME,
            )
        asyncio.run(_tail(settings, name, from_beginning, limit))
    except (KafkaError, OSError) as exc:
        fail(f"cannot read {name} from Kafka at {where}: {exc}", EXIT_RUNTIME)


def resolve_topic(topology: Topology, text: str) -> str | None:
    """The full topic name a kind, a name without the prefix or a full name stands for
    (None when the topology's plan has no such topic)."""
    plan = {spec.name for spec in topology.topic_plan()}
    candidates = [text, topology.topics.prefix + text]
    if text in TOPIC_KINDS:
        with contextlib.suppress(ValueError):
            candidates.insert(0, topology.topics.name(text))  # type: ignore[arg-type]  # a kind
    return next((name for name in candidates if name in plan), None)


async def _tail(bootstrap: Connection, topic: str, from_beginning: bool, limit: int) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(bootstrap),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            sys.stdout.write(record.value.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
            seen += 1
            if limit and seen >= limit:
                return
    finally:
        await consumer.stop()


def demo_command(
    topology: TopologyOption,
    rate: Annotated[float, typer.Option(help="Simulated events per second.")] = 500.0,
    duration: Annotated[str, typer.Option(help="How long to run: 30s, 5m, forever.")] = "forever",
    bootstrap: BootstrapOption = None,
    web_port: Annotated[int, typer.Option(help="Worker HTTP port.")] = 6066,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 10.0,
    episodes_per_hour: Annotated[
        float, typer.Option(help="Simulated problems (pollution, bursts, jams) per hour.")
    ] = 20.0,
) -> None:
    """Create the topics, start a worker, feed it simulated city traffic, show what flows."""
    settings = _settings(kafka_bootstrap_servers=bootstrap)
    topo = open_topology(topology, settings)
    seconds = _duration_seconds(duration)
    try:
        report = asyncio.run(create_topics(settings, topo.topic_plan()))
    except (TopicAdminError, OSError) as exc:
        fail(f"could not create topics on {settings.kafka_bootstrap_servers}: {exc}", EXIT_RUNTIME)
    console.print(
        f"topics: {len(report.created)} created, {len(report.existing)} already there "
        f"(prefix [bold]{topo.topics.prefix}[/])"
    )
    logs = Path("data") / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    cityops = [sys.executable, "-m", "pipeline"]
    common = ["--topology", str(topology), "--bootstrap", settings.kafka_bootstrap_servers]
    # The store where `cityops aggregates query` looks once the demo has stopped (the
    # worker's own data directory would put it under data/demo/state).
    store = settings.chdb_dir(topo.sinks.chdb.path)
    worker_env = {**os.environ, "CITYOPS_CHDB_PATH": str(store)}
    with contextlib.ExitStack() as stack:
        worker_log = stack.enter_context((logs / "worker.log").open("wb"))
        worker = subprocess.Popen(  # noqa: S603  # our own interpreter and module
            [
                *cityops,
                "worker",
                *common,
                "--web-port",
                str(web_port),
                "--data-dir",
                str(logs / "state"),
            ],
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            env=worker_env,
        )
        stack.callback(_stop, worker)
        sim_log = stack.enter_context((logs / "simulate.log").open("wb"))
        # Simulated time starts DEMO_LEAD in the past and runs `speedup` times faster
        # only until it meets the wall clock (a minute at 10x), then at real time: the
        # worker dead-letters readings stamped after arrival + max_clock_skew (5 m), and
        # a demo always ahead of the clock lost everything after its first half minute.
        sim_args = [
            *cityops, "simulate", *common, "--rate", str(rate), "--duration", duration,
            "--speedup", str(speedup), "--episodes-per-hour", str(episodes_per_hour),
            "--start", (datetime.now(UTC) - DEMO_LEAD).isoformat(), "--catch-up",
            "--formats", ",".join(FORMATS),  # every input format the adapters read
        ]  # fmt: skip
        simulator = subprocess.Popen(sim_args, stdout=sim_log, stderr=subprocess.STDOUT)  # noqa: S603
        stack.callback(_stop, simulator)
        console.print(
            f"worker pid {worker.pid} (log {logs / 'worker.log'}, metrics "
            f"http://127.0.0.1:{web_port}/metrics); simulator pid {simulator.pid} at {rate:g}/s "
            f"(log {logs / 'simulate.log'}). Ctrl-C stops both; the broker keeps running."
        )
        watched = {
            kind: topo.topics.name(kind)
            for kind in (
                "raw_sensors",
                "raw_reports",
                "readings",
                "reports",
                "deadletter",
                "incident_events",
                "incidents_city",
                "audit",
            )
        }
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch(settings, watched, seconds, [worker, simulator]))
    console.print(
        "\nLook further with: [bold]cityops tail readings --topology "
        f"{topology} --from-beginning[/] (or reports, deadletter, incidents_city, audit)."
    )


def _duration_seconds(text: str) -> float | None:
    if text == "forever":
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        fail(f"--duration: expected e.g. 30s, 5m, 1h or 'forever', got {text!r}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def _watch(
    bootstrap: Connection,
    topics: dict[str, str],
    seconds: float | None,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Count records per topic live, with the latest record of each, until time is up."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # leader moves are retried
    by_name = {name: kind for kind, name in topics.items()}
    consumer = AIOKafkaConsumer(
        *topics.values(),
        **client_options(bootstrap),
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    latest: dict[str, str] = {}
    started = time.monotonic()
    try:
        with Live(console=console, refresh_per_second=2) as live:
            while seconds is None or time.monotonic() - started < seconds:
                if any(p.poll() is not None for p in processes[:1]):
                    fail("the worker stopped; see data/demo/worker.log", EXIT_RUNTIME)
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batch.items():
                    kind = by_name[tp.topic]
                    counts[kind] += len(records)
                    latest[kind] = _shorten(records[-1].value)
                live.update(_table(topics, counts, latest, time.monotonic() - started))
    finally:
        await consumer.stop()


def _shorten(value: bytes | None) -> str:
    if value is None:
        return ""
    try:
        text = orjson.dumps(orjson.loads(value)).decode()
    except orjson.JSONDecodeError:
        text = value.decode("utf-8", "replace")
    return text if len(text) <= 160 else text[:157] + "..."


def _table(
    topics: dict[str, str], counts: Counter[str], latest: dict[str, str], elapsed: float
) -> Table:
    prefix = next(iter(topics.values())).rsplit("sensors.raw", 1)[0]
    table = Table(title=f"cityops demo — topics {prefix}* — {elapsed:.0f}s", expand=True)
    table.add_column("topic (kind)")
    table.add_column("records", justify="right")
    table.add_column("per s", justify="right")
    table.add_column("latest", overflow="fold")
    for kind in topics:
        rate = counts[kind] / elapsed if elapsed > 0 else 0.0
        table.add_row(kind, str(counts[kind]), f"{rate:.0f}", latest.get(kind, ""))
    return table
