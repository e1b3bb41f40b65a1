"""The Faust app: a diagram of the worker (app, metrics, wiring, agents, web endpoints).

Why thin: every decision lives in a stage (`pipeline/engine/stages/`) that `cityops
dry-run` runs too, so the worker and the dry run cannot disagree; `agents.py` moves
batches between topics and stages, `wiring.py` holds what they share.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from pipeline.engine.worker import agents, incidents_api
from pipeline.engine.worker.telemetry import preset_children
from pipeline.engine.worker.web import aggregates_endpoint, watermarks_endpoint
from pipeline.engine.worker.wiring import Wiring
from pipeline.kafka import recovery_fix
from pipeline.kafka.clients import faust_credentials
from pipeline.metrics import Metrics, install_faust_metrics
from pipeline.settings import Settings
from pipeline.topology import Topology


def broker_urls(bootstrap: str) -> list[str]:
    """`host1:9092,host2:9092` -> Faust's `kafka://` URL list."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def cityops_version() -> str:
    """The installed package's version ("unknown" from a bare checkout)."""
    try:
        return version("cityops")
    except PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings, topology: Topology) -> faust.App:
    """Build the worker for one topology; nothing connects until the worker starts."""
    recovery_fix.install()
    app = _faust_app(settings, topology)
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    install_faust_metrics(app, registry)
    metrics.worker_info.info({"version": cityops_version(), "topology": topology.id})
    preset_children(metrics, topology)
    wiring = Wiring.build(app, settings, topology, metrics)
    agents.register(app, wiring)
    incidents_api.register(app, wiring)

    @app.page("/aggregates")
    async def aggregates_page(web: Any, request: Any) -> Any:
        return await aggregates_endpoint(web, request, wiring.store)

    @app.page("/watermarks")
    async def watermarks_page(web: Any, request: Any) -> Any:
        return await watermarks_endpoint(web, wiring.pipeline.aggregate, wiring.locks["analyze"])

    return app


def _faust_app(settings: Settings, topology: Topology) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
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
