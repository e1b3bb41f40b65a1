"""Issue 16, point 5, through the real secured broker: TLS, SCRAM logins and ACLs.

One broker (`KAFKA_SECURITY=sasl_ssl kafka.sh start`), one deployment of the demo topology
on it (topics created by the admin, ACLs by `cityops acl apply`): a worker connecting as
the pipeline's user processes readings a source wrote and a unit reads the incident on its
own district's topic; a unit may write the updates topic and nothing else; a wrong password,
a client without TLS or without the CA are refused; a rotated password replaces the old one;
and no credential ever reaches the worker's log, even at debug level.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from pipeline.kafka.acls import AclError, apply_acls
from pipeline.kafka.admin import create_topics, list_topics
from pipeline.kafka.clients import client_options
from pipeline.models import ReadingBatch
from pipeline.settings import Settings
from pipeline.topology import Topology, load_topology
from tests.security.conftest import SecureBroker
from tests.support.kafka_broker import load_probe
from tests.support.paths import DEMO, ROOT
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Deployment:
    """The demo topology under a prefix of its own, with its ACLs applied."""

    topology: Topology
    prefix: str
    worker_id: str


@pytest.fixture(scope="module")
def deployment(secure_broker: SecureBroker) -> Deployment:
    prefix = f"sec.{uuid.uuid4().hex[:8]}."
    demo = load_topology(DEMO)
    topology = demo.model_copy(update={"topics": demo.topics.model_copy(update={"prefix": prefix})})
    asyncio.run(create_topics(secure_broker.settings("admin"), topology.topic_plan()))
    worker_id = f"w-{prefix}"
    applied = subprocess.run(
        [sys.executable, "-m", "pipeline", "acl", "apply", "--topology", str(DEMO),
         "--worker-id", worker_id, "--source", "gateway"],
        env={**os.environ, **secure_broker.client_env("admin"), "CITYOPS_TOPIC_PREFIX": prefix},
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "created User:unit-310101 ALLOW WRITE TOPIC" in applied.stdout
    return Deployment(topology, prefix, worker_id)


def _reading(event_id: str, value: float, at: datetime) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "sensor_id": "aq-001", "metric": "pm25", "value": value,
        "unit": "ug/m3", "observed_at": at.isoformat(),
    })  # fmt: skip


async def _send(settings: Settings, topic: str, values: list[bytes], key: bytes | None) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _read_until(
    settings: Settings,
    topic: str,
    enough: Callable[[list[bytes]], bool],
    worker: WorkerProcess | None = None,
    timeout: float = 90.0,
) -> list[bytes]:
    """Records of `topic` from the start until `enough` says so (or fail after `timeout`)."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings), group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, metadata_max_age_ms=1000,
    )  # fmt: skip
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while not enough(values):
            if worker is not None and not worker.alive():
                pytest.fail(f"the worker exited:\n{worker.report()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{len(values)} records on {topic} after {timeout:.0f}s")
            for records in (await consumer.getmany(timeout_ms=300)).values():
                values.extend(record.value for record in records)
    finally:
        await consumer.stop()
    return values


def _readings(values: list[bytes]) -> list[str]:
    return [r.event_id for v in values for r in ReadingBatch.model_validate_json(v).readings()]


async def test_a_worker_on_sasl_ssl_processes_readings_and_never_logs_a_credential(
    secure_broker: SecureBroker, deployment: Deployment, tmp_path: Path
) -> None:
    name = deployment.topology.topics.name
    # PM2.5 above 75 for two readings opens an incident once detection's lateness (10 s)
    # has passed them: six readings 5 s apart.
    start = datetime.now(UTC) - timedelta(seconds=60)
    sent = [f"sec-{i}" for i in range(6)]
    values = [
        _reading(eid, 80.0 + i, start + timedelta(seconds=5 * i)) for i, eid in enumerate(sent)
    ]
    await _send(secure_broker.settings("gateway"), name("raw_sensors"), values, key=b"aq-001")

    worker = WorkerProcess(
        DEMO, secure_broker.bootstrap, tmp_path, prefix=deployment.prefix,
        worker_id=deployment.worker_id, env=secure_broker.client_env("cityops"),
    )  # fmt: skip
    worker.args += ["--loglevel", "debug"]
    with worker:
        readings = await _read_until(
            secure_broker.settings("cityops"), name("readings"),
            lambda got: set(sent) <= set(_readings(got)), worker,
        )  # fmt: skip
        # The unit of Huangpu reads the incident on its own district's topic.
        incidents = await _read_until(
            secure_broker.settings("unit-310101"), name("incidents_district", "310101"),
            lambda got: len(got) > 0, worker,
        )  # fmt: skip
    assert sorted(set(_readings(readings))) == sent
    assert orjson.loads(incidents[0])["areas"]["district"] == "310101"
    log = worker.log()
    assert "Authenticated as cityops via SCRAM-SHA-512" in log, "the log shows the logins"
    for user in ("cityops", "admin", "gateway", "unit-310101", "broker"):
        assert secure_broker.password(user) not in log, f"{user}'s password is in the log"


async def test_a_unit_may_write_updates_and_read_its_own_district_only(
    secure_broker: SecureBroker, deployment: Deployment
) -> None:
    name = deployment.topology.topics.name
    unit = secure_broker.settings("unit-310101")
    update = orjson.dumps({"update_id": "sec-u-1", "note": "written by a unit"})
    await _send(unit, name("incident_updates"), [update], key=None)
    landed = await _read_until(
        secure_broker.settings("admin"), name("incident_updates"), lambda got: update in got
    )
    assert update in landed

    forbidden = [
        name("raw_sensors"),  # no DESCRIBE: refused at metadata
        name("readings"),
        name("audit"),
        name("incidents_city"),
        name("incidents_district", "310101"),  # readable by this unit, not writable
        name("incidents_district", "310104"),
    ]
    for topic in forbidden:
        with pytest.raises(TopicAuthorizationFailedError):
            await _send(unit, topic, [b'{"forged": true}'], key=None)
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_until(unit, name("incidents_district", "310104"), lambda got: False, timeout=20)
    with pytest.raises(AclError, match="super user"):
        await apply_acls(unit, [], lambda principal: False)


async def test_a_wrong_password_or_a_client_without_tls_or_the_ca_is_refused(
    secure_broker: SecureBroker,
) -> None:
    probe = load_probe()
    address, cafile = secure_broker.bootstrap, str(secure_broker.cafile)
    password = secure_broker.password("cityops")
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        right = probe.Security(cafile, "cityops", password, mechanism)
        assert probe.metadata_brokers(address, security=right), mechanism
    wrong = probe.Security(cafile, "cityops", password + "x")
    with pytest.raises(probe.ProbeError, match="SASL authentication failed"):
        probe.metadata_brokers(address, security=wrong)
    with pytest.raises((OSError, probe.ProbeError)):
        probe.metadata_brokers(address)  # plaintext against the TLS listener

    refused = [
        secure_broker.settings("cityops", kafka_password=password + "x"),
        secure_broker.settings("cityops", kafka_security_protocol="SASL_PLAINTEXT",
                               kafka_ssl_cafile=None),
        secure_broker.settings("cityops", kafka_ssl_cafile=None),  # the system's CAs only
    ]  # fmt: skip
    for settings in refused:
        with pytest.raises(KafkaConnectionError):
            await list_topics(settings)
    assert await list_topics(secure_broker.settings("admin"), "sec.")


def test_a_rotated_password_replaces_the_old_one(secure_broker: SecureBroker) -> None:
    probe = load_probe()
    cafile = str(secure_broker.cafile)
    old = secure_broker.password("gateway")
    rotated = secure_broker.kafka_sh("rotate", "gateway")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new = secure_broker.password("gateway")
    assert new != old and new not in rotated.stdout + rotated.stderr
    assert probe.metadata_brokers(
        secure_broker.bootstrap, security=probe.Security(cafile, "gateway", new)
    )
    with pytest.raises(probe.ProbeError, match="SASL authentication failed"):
        probe.metadata_brokers(
            secure_broker.bootstrap, security=probe.Security(cafile, "gateway", old)
        )
