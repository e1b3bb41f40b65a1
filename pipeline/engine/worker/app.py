"""The Faust app: a diagram of the worker (app, metrics, wiring, agents, web endpoints).

Why thin: every decision lives in a stage (`pipeline/engine/stages/`) that `cityops
dry-run` runs too, so the worker and the dry run cannot disagree; `agents.py` moves
batches between topics and stages, `wiring.py` holds what they share.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any, NoReturn

import faust
from prometheus_client import CollectorRegistry

from pipeline import cityops_version
from pipeline.engine.batches import partition_loads
from pipeline.engine.worker import agents, health, incidents_api
from pipeline.engine.worker.failure import exit_if_stop_hangs
from pipeline.engine.worker.telemetry import preset_children
from pipeline.engine.worker.web import aggregates_endpoint, watermarks_endpoint
from pipeline.engine.worker.wiring import Wiring
from pipeline.kafka import recovery_fix
from pipeline.kafka.assignor import weighted_assignor
from pipeline.kafka.clients import faust_credentials
from pipeline.kafka.recovery_watch import RecoveryWatch
from pipeline.metrics import Metrics, install_faust_metrics
from pipeline.settings import Settings
from pipeline.topology import Topology


class Worker(faust.Worker):
    """Faust's worker with a deadline on its stop (`Settings.stop_timeout_seconds`)."""

    def __init__(self, app: faust.App, *args: Any, stop_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self._stop_timeout = stop_timeout
        self._stop_deadline: Any = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._stop_deadline is None:
            self._stop_deadline = exit_if_stop_hangs(self._stop_timeout)
        super()._schedule_shutdown(signal)


#: The cyclic collector's thresholds in the worker (young, middle, old generations).
COLLECTOR_THRESHOLDS = (2_000, 20, 100)


def tune_collector() -> None:
    """Freeze the start-up objects and collect cycles less often.

    Why: the start-up objects (topology, registry, modules) live as long as the worker, and
    freezing them keeps full collections from walking them again and again. The hot
    path's garbage (rows, tuples, dicts without cycles) is freed by reference counting,
    yet at Python's default thresholds (700, 10, 10) the collector ran ~1,800 young, ~170
    middle and ~17 full passes (~80 ms each) over a 100,000-reading bench run: 2.3 s,
    about a sixth of the worker's CPU. At these: 0.8 s, no full pass, the longest pause
    34 ms (gc callbacks in a scratch tree). A young threshold of 25,000 cut the time to
    0.5 s but paused up to 96 ms, which latency at half the saturated rate cannot afford.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def run_worker(app: faust.App, loglevel: str, stop_timeout: float) -> NoReturn:
    """Run the app until it stops, then leave with its status.

    The stop is complete when Faust returns (outputs acknowledged, offsets committed): the
    process leaves without the interpreter's finalization, where chDB's native teardown
    crashed now and then (SIGSEGV after "Closing event loop"), turning a clean stop into a
    failure for the supervisor.
    """
    tune_collector()
    # Our handler (JSON, masking) stays: Faust must not replace the logging setup.
    worker = Worker(
        app,
        loglevel=loglevel,
        redirect_stdouts=False,
        override_logging=False,
        stop_timeout=stop_timeout,
    )
    code = 1
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        code = stopped.code if isinstance(stopped.code, int) else (0 if not stopped.code else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def broker_urls(bootstrap: str) -> list[str]:
    """`host1:9092,host2:9092` -> Faust's `kafka://` URL list."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_app(settings: Settings, topology: Topology) -> faust.App:
    """Build the worker for one topology; nothing connects until the worker starts."""
    recovery_fix.install()
    app = _faust_app(settings, topology)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    app.add_dependency(RecoveryWatch(app, metrics.recovery_seeks_back))
    install_faust_metrics(app, registry)
    metrics.worker_info.info({"version": cityops_version(), "topology": topology.id})
    preset_children(metrics, topology)
    wiring = Wiring.build(app, settings, topology, metrics)
    intake = agents.register(app, wiring)
    incidents_api.register(app, wiring)
    health.register(app, intake, wiring.writer)

    @app.page("/aggregates")
    async def aggregates_page(web: Any, request: Any) -> Any:
        return await aggregates_endpoint(web, request, wiring.store)

    @app.page("/watermarks")
    async def watermarks_page(web: Any, request: Any) -> Any:
        return await watermarks_endpoint(web, wiring.pipeline.aggregate, wiring.locks["analyze"])

    return app


def _faust_app(settings: Settings, topology: Topology) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    assignor = weighted_assignor(topology.topics.name("readings"), partition_loads(topology))
    return faust.App(
        settings.worker_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        broker_credentials=faust_credentials(settings),
        datadir=str(settings.data_dir / "faust"),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_partitions=topology.topics.partitions,
        topic_replication_factor=topology.topics.replication,
        topic_disable_leader=True,
        table_standby_replicas=0,
        PartitionAssignor=assignor,
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
