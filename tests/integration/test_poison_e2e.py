"""One reading that makes a stateful stage fail never stops the city: it is found across
two restarts, dead-lettered alone with `processing_error`, and its neighbours go through.

The defect is planted (tests/support/poison_stage.py: a pm25 value of 666.25 makes the
aggregate stage raise); the test plays the supervisor, restarting the worker when it exits
with status 70 as Kubernetes or compose would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from pipeline.engine.worker.failure import EXIT_BATCH_FAILED
from pipeline.models import ReadingBatch
from tests.support.demo import demo_data, deploy
from tests.support.worker import (
    TopicWatcher,
    WorkerProcess,
    consume_until,
    produce,
    readings_in,
    sensor_key,
)

POISON = 666.25
#: Seconds one worker start may take to reach its verdict (exit 70, or the dead letter).
START_BUDGET_S = 120


def _reading(i: int, sensor: str, value: float, at: datetime) -> bytes:
    return orjson.dumps({
        "event_id": f"p-{i}", "sensor_id": sensor, "metric": "pm25", "value": value,
        "unit": "ug/m3", "observed_at": at.isoformat(),
    })  # fmt: skip


@pytest.mark.integration
async def test_a_poison_reading_is_dead_lettered_alone_and_the_rest_goes_through(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, topology = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    # aq-001 breaches pm25 (> 75) six times in a row with the poison in the middle, all in
    # one readings batch: the incident opens only if the poison's neighbours go through.
    messages = [
        _reading(i, "aq-001", POISON if i == 3 else 160.0, t0 + timedelta(seconds=20 * i))
        for i in range(7)
    ]
    messages += [
        _reading(10 + i, "aq-002", 20.0 + i, t0 + timedelta(seconds=20 * i)) for i in range(4)
    ]
    await produce(kafka_bootstrap, topology.topics.name("raw_sensors"), messages, key_of=sensor_key)

    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"poison-{topic_prefix}",
        module="tests.support.poison_stage",
    ).start()  # fmt: skip
    dead, city = topology.topics.name("deadletter"), topology.topics.name("incidents_city")
    restarts = 0
    letters: list[dict[str, object]] = []
    # Each start has its own budget (a start, a group join that waits out the dead member's
    # session, recovery, one batch): three starts on a loaded machine must not share one.
    began = time.monotonic()
    deadline = began + START_BUDGET_S
    watcher = TopicWatcher(kafka_bootstrap, [dead])
    await watcher.consumer.start()
    try:
        while not letters:
            elapsed = time.monotonic() - began
            assert time.monotonic() < deadline, (
                f"no dead letter after {restarts} restarts and {elapsed:.0f} s; the worker's"
                f" worker:\n{worker.report()}"
            )
            if not worker.alive():
                code = worker.process.returncode if worker.process else None
                assert code == EXIT_BATCH_FAILED, f"exit {code}\n{worker.report()}"
                restarts += 1
                assert restarts <= 2, f"more than two restarts\n{worker.report()}"
                worker.start()  # the supervisor's restart
                deadline = time.monotonic() + START_BUDGET_S
            await watcher.read()
            letters = [doc for doc in watcher.records[dead] if doc["reason"] == "processing_error"]
        assert restarts == 2  # one to find the batch, one to find the reading
        incidents = await consume_until(kafka_bootstrap, [city], 1, timeout=60, worker=worker)
        await asyncio.sleep(3)
        assert worker.alive(), worker.report()
    finally:
        await watcher.consumer.stop()
        worker.stop()

    (letter,) = letters
    assert letter["stage"] == "analyze" and "planted defect" in str(letter["detail"])
    assert "(stack " in str(letter["detail"]) and letter["element"] is not None
    (poisoned,) = ReadingBatch.model_validate_json(
        base64.b64decode(str(letter["original"]))
    ).readings()
    assert (poisoned.sensor_id, poisoned.value) == ("aq-001", POISON)
    assert any(orjson.loads(value)["subject"] == "aq-001" for _, value in incidents[city])
    # Detection saw every breaching reading but the poison (the events topic keeps every
    # piece of evidence; the public topics may be quieter).
    events_topic = topology.topics.name("incident_events")
    found = await consume_until(kafka_bootstrap, [events_topic], 1, timeout=30)
    snapshots = [doc for _, value in found[events_topic] for doc in orjson.loads(value)]
    last = [doc for doc in snapshots if doc["subject"] == "aq-001"][-1]
    # (p-6, the newest, still waits in detection for the allowed lateness to pass.)
    assert set(last["evidence"]["event_ids"]) == {"p-0", "p-1", "p-2", "p-4", "p-5"}
    # Every reading reached the readings topic; only the poison one was dead-lettered.
    found = await consume_until(
        kafka_bootstrap, [topology.topics.name("readings")], len(messages), timeout=30
    )
    assert len(readings_in(found[topology.topics.name("readings")])) == len(messages)


@pytest.mark.integration
async def test_a_raw_message_near_the_broker_limit_is_dead_lettered_and_nothing_stalls(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A ~1 MB raw record, just under the topics' 1 MiB limit and over this worker's
    (CITYOPS_MAX_MESSAGE_BYTES may only lower it): its dead letter must fit the broker
    (the original is cut, its size and SHA-256 kept), and the valid readings queued behind
    it go through."""
    path, topology = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    huge = orjson.dumps({"sensor_id": "aq-001", "metric": "pm25", "note": "x" * 1_040_000})
    good = [_reading(i, "aq-002", 20.0 + i, t0 + timedelta(seconds=i)) for i in range(300)]
    raw = topology.topics.name("raw_sensors")
    await produce(kafka_bootstrap, raw, [huge], key=b"aq-001")
    await produce(kafka_bootstrap, raw, good, key_of=sensor_key)
    dead, readings = topology.topics.name("deadletter"), topology.topics.name("readings")
    with WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"huge-{topic_prefix}",
        env={"CITYOPS_MAX_MESSAGE_BYTES": "524288"},
    ) as worker:  # fmt: skip
        found = await consume_until(
            kafka_bootstrap, [readings, dead], len(good) + 1, timeout=120, worker=worker
        )
        assert worker.alive(), worker.report()
    assert len(readings_in(found[readings])) == len(good)
    (letter,) = [orjson.loads(value) for _, value in found[dead]]
    assert letter["reason"] == "oversized"
    assert letter["original_size"] == len(huge) < topology.topics.max_message_bytes
    assert len(base64.b64decode(letter["original"])) == 256 * 1024
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
