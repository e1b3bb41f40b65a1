"""Session fixtures: the real Kafka broker, started once and stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.kafka_broker import Broker, start_broker

if TYPE_CHECKING:
    from tests.support.clickhouse_http import ClickHouseHTTPServer
    from tests.support.cluster import KafkaCluster

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The real Apache Kafka broker for this session (KAFKA_BOOTSTRAP_SERVERS to reuse one)."""
    broker = start_broker(tmp_path_factory.mktemp("kafka-state"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """The local three-node cluster (tests marked `cluster` or `chaos`), stopped at the end;
    KAFKA_CLUSTER_PORT pins its ports (6 from there), else free ones are found."""
    from tests.support.cluster import start_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """host:port of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so every test has its own topics."""
    return f"test.{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB serves one directory per process: every test in this process shares it."""
    from pipeline.sinks.backends.chdb import current_path

    return current_path() or tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def ch_server(chdb_dir: Path) -> Iterator[ClickHouseHTTPServer]:
    """ClickHouse's HTTP interface on the embedded engine, for the clickhouse-connect path."""
    from tests.support.clickhouse_http import ClickHouseHTTPServer

    server = ClickHouseHTTPServer(chdb_dir, user="cityops", password="s3cret").start()  # noqa: S106  # test credentials
    try:
        yield server
    finally:
        server.stop()
