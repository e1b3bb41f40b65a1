"""A worker whose recovery lost fetched changelog records still recovers every record and
becomes ready (`pipeline.kafka.recovery_watch`).

The second worker here drops the rest of the first fetched batch holding a changelog
record, as Faust's `Consumer.getmany` does when the flow stops or the generation changes
mid-batch (`tests.support.drop_changelog`). aiokafka's position is then past records the
recovery waits for, and nothing seeks the partition again: without the watch the worker
logs "No event received for active tp" every 5 s and is never ready.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.support.demo import demo_data, deploy
from tests.support.worker import WorkerProcess, consume_until, produce, readings_in, sensor_key

SENSORS = {"aq-001": "pm25", "aq-002": "pm25", "noise-001": "noise_laeq"}
UNITS = {"pm25": "ug/m3", "noise_laeq": "dB(A)"}


def _readings(first: int, count: int, t0: datetime) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"watch-{sensor}-{i}", "sensor_id": sensor, "metric": metric,
            "value": 40.0, "unit": UNITS[metric],
            "observed_at": (t0 + timedelta(seconds=10 * i)).isoformat(),
        })
        for i in range(first, first + count)
        for sensor, metric in SENSORS.items()
    ]  # fmt: skip


@pytest.mark.integration
async def test_a_recovery_that_lost_fetched_changelog_records_reads_them_again(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, topology = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    raw, readings = topology.topics.name("raw_sensors"), topology.topics.name("readings")
    t0 = datetime.now(UTC) - timedelta(hours=2)
    before, after = _readings(0, 300, t0), _readings(300, 100, t0)

    def worker(module: str) -> WorkerProcess:
        return WorkerProcess(
            path, kafka_bootstrap, tmp_path, prefix=topic_prefix,
            worker_id=f"watch-{topic_prefix}", module=module,
        )  # fmt: skip

    # A first worker fills the changelogs, so the second one has records to recover.
    await produce(kafka_bootstrap, raw, before, key_of=sensor_key)
    first = worker("pipeline").start()
    try:
        await first.wait_ready()
        await consume_until(kafka_bootstrap, [readings], len(before), settle=2.0, worker=first)
    finally:
        assert first.stop() == 0, first.report()

    second = worker("tests.support.drop_changelog").start()
    try:
        await second.wait_ready(timeout=60)
        log = second.log()
        assert "dropped changelog records" in log, second.report()  # the fault happened
        assert "stalled" in log and "seeking back" in log, second.report()
        metrics = second.get("/metrics")[1].decode()
        sought = [line for line in metrics.splitlines()
                  if line.startswith("cityops_recovery_seeks_back_total ")]  # fmt: skip
        assert sought and float(sought[0].split()[1]) >= 1, sought
        # Ready, and working: what arrives now goes through.
        await produce(kafka_bootstrap, raw, after, key_of=sensor_key)
        found = await consume_until(
            kafka_bootstrap, [readings], len(before) + len(after), settle=1.0, worker=second
        )
    finally:
        assert second.stop() == 0, second.report()
    ids = {doc["event_id"] for doc in readings_in(found[readings])}
    assert len(ids) == len(before) + len(after)
