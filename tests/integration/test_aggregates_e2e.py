"""Aggregates end to end: real broker, real worker, ClickHouse through clickhouse-connect.

Readings go through a worker that is SIGKILLed mid-stream and restarted, and whose store
is down for 30 s; afterwards the store's rows equal an offline recomputation of the same
input exactly (count, sum, min, max, breaches) at the street, district and city levels.
"""

from __future__ import annotations

import asyncio
import math
import random
import signal
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from pipeline.engine.worker.failure import EXIT_STOPPED_MID_BATCH
from pipeline.models import AreaLevel
from pipeline.sinks.backends.clickhouse import ClickHouseStore
from pipeline.topology import Topology
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.demo import demo_data, deploy
from tests.support.worker import (
    WorkerProcess,
    committed_and_end,
    consume_until,
    produce,
    sensor_key,
)

WINDOW = timedelta(minutes=1)
# sensor -> (metric, street, district); aq-003 has no street: it counts at district and city.
SENSORS = {
    "aq-001": ("pm25", "310101002", "310101"),
    "aq-002": ("pm25", "310104014", "310104"),
    "aq-003": ("pm25", None, "310104"),
    "noise-001": ("noise_laeq", "310101013", "310101"),
}
BREACH = {"pm25": lambda v: v > 75, "noise_laeq": lambda v: v > 60}


def _inputs(t0: datetime, minutes: int) -> list[tuple[str, str, float, datetime]]:
    rng = random.Random(20261128)
    out = []
    for step in range(minutes * 6):  # every 10 s
        at = t0 + timedelta(seconds=10 * step + rng.randint(0, 9))
        for sensor, (metric, _, _) in SENSORS.items():
            low, high = (20.0, 140.0) if metric == "pm25" else (45.0, 75.0)
            out.append((sensor, metric, round(rng.uniform(low, high), 3), at))
    return out


def _message(i: int, sensor: str, metric: str, value: float, at: datetime) -> bytes:
    unit = "ug/m3" if metric == "pm25" else "dB(A)"
    return orjson.dumps({
        "event_id": f"agg-{i}", "sensor_id": sensor, "metric": metric, "value": value,
        "unit": unit, "observed_at": at.isoformat(),
    })  # fmt: skip


def _offline(
    inputs: list[tuple[str, str, float, datetime]],
) -> dict[tuple[str, str, str, datetime], dict[str, Any]]:
    """Independent recomputation: plain groupby over every level a reading belongs to."""
    cells: dict[tuple[str, str, str, datetime], list[float]] = defaultdict(list)
    for sensor, metric, value, at in inputs:
        _, street, district = SENSORS[sensor]
        start = datetime.fromtimestamp(at.timestamp() // 60 * 60, UTC)
        for level, code in (("street", street), ("district", district), ("city", "310000")):
            if code:
                cells[(level, code, metric, start)].append(value)
    return {
        key: {
            "count": len(values), "sum": math.fsum(values), "min": min(values),
            "max": max(values), "breaches": sum(1 for v in values if BREACH[key[2]](v)),
        }
        for key, values in cells.items()
    }  # fmt: skip


def _stored(
    store: ClickHouseStore, keys: set[tuple[str, str, str]], t0: datetime, until: datetime
) -> dict[tuple[str, str, str, datetime], dict[str, Any]]:
    found = {}
    for level, code, metric in keys:
        for row in store.query(code, metric, t0, until, AreaLevel(level)):
            found[(level, code, metric, row.window_start)] = {
                "count": row.count, "sum": row.sum, "min": row.min, "max": row.max,
                "breaches": row.breaches,
            }  # fmt: skip
    return found


def _diagnosis(worker: WorkerProcess) -> str:
    """What the worker says about lost or held rows: its counters and its complaints."""
    try:
        with urllib.request.urlopen(  # noqa: S310  # loopback
            f"http://127.0.0.1:{worker.web_port}/metrics", timeout=10
        ) as response:
            metrics = response.read().decode()
    except OSError as exc:
        metrics = f"(no metrics: {exc})"
    counters = [
        line
        for line in metrics.splitlines()
        if line.startswith("cityops_") and "_created" not in line and "_bucket" not in line
    ]
    complaints = [
        line
        for line in worker.log().splitlines()
        if '"level":"info"' not in line and "store init failed" not in line
    ]
    return "\n".join([*counters, *complaints[-40:], worker.report()])


#: Seconds of arrival time after which a silent sensor stops holding windows back.
IDLE = 3


@dataclass
class Scenario:
    """A demo topology writing to its own ClickHouse database, and readings for it."""

    topology: Topology
    store: ClickHouseStore
    messages: list[bytes]  # `minutes` of readings from four sensors in two districts
    closers: list[bytes]  # one reading per district far ahead: closes every window once
    # every other sensor has been idle (nothing arrived from it) for IDLE seconds
    expected: dict[tuple[str, str, str, datetime], dict[str, Any]]
    keys: set[tuple[str, str, str]]
    since: datetime
    until: datetime
    worker: Callable[[], WorkerProcess]

    def stored(self) -> dict[tuple[str, str, str, datetime], dict[str, Any]]:
        return _stored(self.store, self.keys, self.since, self.until)

    async def close_windows(self, bootstrap: str) -> None:
        """Let the other sensors go idle (arrival time), then send the closers: no single
        reading ahead may move a watermark while others still report."""
        await asyncio.sleep(IDLE + 1.5)
        raw = self.topology.topics.name("raw_sensors")
        await produce(bootstrap, raw, self.closers, key_of=sensor_key)


async def _scenario(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, ch_server: ClickHouseHTTPServer,
    *, minutes: int, worker_id: str,
) -> Scenario:  # fmt: skip
    database = f"e2e_{uuid.uuid4().hex[:10]}"
    data = demo_data()
    data["sinks"] = {"store": "clickhouse", "clickhouse": {"database": database}}
    data["event_time"] = {"idle_timeout": f"{IDLE}s"}
    path, topology = await deploy(
        data, bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )

    t0 = datetime.fromtimestamp(time.time() // 60 * 60, UTC) - timedelta(minutes=30)
    inputs = _inputs(t0, minutes=minutes)
    expected = _offline(inputs)
    env = {
        "CITYOPS_CLICKHOUSE_URL": ch_server.url,
        "CITYOPS_CLICKHOUSE_USER": "cityops",
        "CITYOPS_CLICKHOUSE_PASSWORD": "s3cret",
        # Passes of a few messages: a batch the worker takes is run and sent in many
        # passes, so a kill also falls between the passes of one batch.
        "CITYOPS_PASS_MAX_BYTES": "4000",
    }
    return Scenario(
        topology=topology,
        store=ClickHouseStore(
            ch_server.url, database=database, user="cityops", password=SecretStr("s3cret")
        ),
        messages=[_message(i, *item) for i, item in enumerate(inputs)],
        closers=[
            _message(10_000 + i, sensor, "pm25", 30.0, t0 + timedelta(minutes=20))
            for i, sensor in enumerate(("aq-001", "aq-002"))
        ],
        expected=expected,
        keys={(level, code, metric) for level, code, metric, _ in expected},
        since=t0,
        until=t0 + timedelta(minutes=minutes),
        worker=lambda: WorkerProcess(
            path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=worker_id, env=env
        ),
    )


@pytest.mark.integration
async def test_store_equals_offline_recomputation_after_kill_and_outage(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, ch_server: ClickHouseHTTPServer
) -> None:
    sc = await _scenario(
        kafka_bootstrap, topic_prefix, tmp_path, ch_server, minutes=6,
        worker_id=f"agg-{topic_prefix}",
    )  # fmt: skip
    topology, messages, expected = sc.topology, sc.messages, sc.expected
    raw = topology.topics.name("raw_sensors")
    worker = sc.worker

    half = len(messages) // 2
    await produce(kafka_bootstrap, raw, messages[:half], key_of=sensor_key)
    first = worker().start()
    # Kill once the first half is normalized: windows are open (they wait for the
    # district's registered sensors) and offsets are partly committed.
    await consume_until(
        kafka_bootstrap, [topology.topics.name("readings")], half, settle=1.0, worker=first
    )
    first.stop(signal.SIGKILL)  # mid-stream: windows open, offsets possibly uncommitted

    await produce(kafka_bootstrap, raw, messages[half:], key_of=sensor_key)
    ch_server.down()  # the store is away for 30 s while the worker restarts and works
    second = worker().start()
    try:
        await sc.close_windows(kafka_bootstrap)
        await asyncio.sleep(30 - IDLE)
        assert second.alive(), second.report()
        ch_server.up()
        sc.store.init()  # what the worker creates (maybe not yet), so the polling can read
        deadline = time.monotonic() + 120
        while len(sc.stored()) < len(expected):
            missing = sorted(set(expected) - set(sc.stored()))
            assert time.monotonic() < deadline, f"rows missing: {missing}\n{_diagnosis(second)}"
            await asyncio.sleep(1)
        await asyncio.sleep(2)  # a double count would arrive now
        # While the worker runs, readers go through its /aggregates endpoint.
        url = (
            f"http://127.0.0.1:{second.web_port}/aggregates"
            "?area=310101&metric=pm25&level=district&since=86400"
        )
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  # loopback
            served = orjson.loads(response.read())["rows"]
        district = {k: v for k, v in expected.items() if k[:3] == ("district", "310101", "pm25")}
        assert [(r["window_start"], r["count"]) for r in served] == [
            (k[3].isoformat().replace("+00:00", "Z"), v["count"])
            for k, v in sorted(district.items())
        ]
    finally:
        ch_server.up()
        second.stop()

    stored = sc.stored()
    assert len(stored) == len(expected) == 6 * 8  # 6 minutes x 8 (level, area, metric)
    for key, want in expected.items():
        got = stored[key]
        assert (got["count"], got["min"], got["max"], got["breaches"]) == (
            want["count"], want["min"], want["max"], want["breaches"],
        ), key  # fmt: skip
        # Street and district sums are exact (fsum in the worker); the city sum is a
        # ClickHouse sum over district sums, equal up to float rounding.
        if key[0] == "city":
            assert got["sum"] == pytest.approx(want["sum"], rel=1e-12), key
        else:
            assert got["sum"] == want["sum"], key


@pytest.mark.integration
async def test_a_warm_shutdown_during_a_store_outage_loses_no_reading(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, ch_server: ClickHouseHTTPServer
) -> None:
    """SIGTERM while the analyze agent waits for the store: the batch it holds was neither
    stored nor persisted, so its offsets must not be committed; the next worker redoes it."""
    sc = await _scenario(
        kafka_bootstrap, topic_prefix, tmp_path, ch_server, minutes=3,
        worker_id=f"warm-{topic_prefix}",
    )  # fmt: skip
    topology, messages, expected = sc.topology, sc.messages, sc.expected
    worker = sc.worker
    ch_server.down()
    await produce(kafka_bootstrap, topology.topics.name("raw_sensors"), messages, key_of=sensor_key)
    first = worker().start()
    try:
        await consume_until(
            kafka_bootstrap, [topology.topics.name("readings")], len(messages),
            settle=1.0, worker=first,
        )  # fmt: skip
        await sc.close_windows(kafka_bootstrap)  # rows wait for the store that is down
        await asyncio.sleep(8)  # several commit intervals while analyze retries the store
        assert first.alive(), first.report()
    finally:
        code = first.stop(timeout=30)  # SIGTERM: a warm shutdown (SIGKILL after 30 s)
    # It stops by itself instead of waiting for the store (Faust waits for the batch).
    assert code == EXIT_STOPPED_MID_BATCH, first.report()
    assert "the next worker replays it" in first.log()
    group = f"warm-{topic_prefix}"
    done, end = await committed_and_end(
        kafka_bootstrap, group, topology.topics.name("readings"), topology.topics.partitions
    )
    assert done < end, f"the unfinished batch was committed: {done} of {end}"
    ch_server.up()
    sc.store.init()  # what the worker would create, so the polling below can read

    second = worker().start()
    try:
        deadline = time.monotonic() + 120
        while len(sc.stored()) < len(expected):
            missing = sorted(set(expected) - set(sc.stored()))
            assert time.monotonic() < deadline, (
                f"rows missing: {missing}\nreadings committed {done} of {end} by the first"
                f" worker\n{_diagnosis(second)}"
            )
            await asyncio.sleep(1)
        await asyncio.sleep(2)  # a double count would arrive now
    finally:
        second.stop()
    stored = sc.stored()
    counts = {key: got["count"] for key, got in stored.items()}
    assert counts == {key: want["count"] for key, want in expected.items()}
