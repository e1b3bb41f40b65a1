"""`GET /watermarks` and `cityops watermarks` against a real worker on the real broker:
each district's watermark is its slowest active source's newest reading minus the allowed
lateness, and a registered sensor that never reported holds its district back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.demo import demo_data, deploy
from tests.support.worker import WorkerProcess, produce, sensor_key

#: (sensor, metric, unit, seconds of readings): aq-003 trails its Xuhui neighbours.
STREAMS = [
    ("aq-001", "pm25", "ug/m3", 120),
    ("aq-002", "pm25", "ug/m3", 120),
    ("water-002", "water_pressure", "kPa", 120),
    ("aq-003", "pm25", "ug/m3", 60),
]


def _readings(t0: datetime) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"wm-{sensor}-{s}", "sensor_id": sensor, "metric": metric,
            "value": 300.0 if metric == "water_pressure" else 20.0, "unit": unit,
            "observed_at": (t0 + timedelta(seconds=s)).isoformat(),
        })
        for sensor, metric, unit, seconds in STREAMS
        for s in range(0, seconds + 1, 10)
    ]  # fmt: skip


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  # http to the test's worker
            doc: dict[str, Any] = json.loads(response.read())
            return doc
    except (urllib.error.URLError, OSError):
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.integration
async def test_the_watermarks_of_a_running_worker(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, topology = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    raw = topology.topics.name("raw_sensors")
    await produce(kafka_bootstrap, raw, _readings(t0), key_of=sensor_key)
    lateness = timedelta(seconds=10)  # the demo's aggregation.allowed_lateness
    want = _iso(t0 + timedelta(seconds=60) - lateness)  # aq-003's newest, minus lateness
    with WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"wm-{topic_prefix}"
    ) as worker:  # fmt: skip
        url = f"http://127.0.0.1:{worker.web_port}"
        deadline = time.monotonic() + 120
        areas: dict[str, Any] = {}
        while areas.get("310104", {}).get("watermark") != want:
            assert worker.alive(), worker.report()
            assert time.monotonic() < deadline, f"{areas}\n{worker.report()}"
            await asyncio.sleep(1)
            doc = _get(f"{url}/watermarks")
            areas = {area["area"]: area for area in (doc or {}).get("areas", [])}
        await asyncio.sleep(2)  # let the rest of the stream land; nothing may move back
        cli = subprocess.run(
            [sys.executable, "-m", "pipeline", "watermarks", "-t", str(path), "--worker", url,
             "--json"],
            env={**os.environ, "CITYOPS_TOPIC_PREFIX": topic_prefix},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        table = subprocess.run(
            [sys.executable, "-m", "pipeline", "watermarks", "-t", str(path), "--worker", url],
            env={**os.environ, "COLUMNS": "200"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    doc = json.loads(cli.stdout)
    areas = {area["area"]: area for area in doc["areas"]}
    xuhui, huangpu = areas["310104"], areas["310101"]
    assert xuhui["watermark"] == want and xuhui["allowed_lateness_seconds"] == 10
    assert xuhui["behind"]["sources"] == ["aq-003"] and xuhui["active_sources"] == 3
    # Huangpu's registered noise and water sensors never reported: they hold it at the
    # time its first reading registered them, until they go idle.
    assert set(huangpu["behind"]["sources"]) == {"noise-001", "water-001"}
    assert huangpu["watermark"] == _iso(t0 - lateness)
    assert huangpu["newest"] == _iso(t0 + timedelta(seconds=120))
    assert sum(p["active_sources"] for p in doc["partitions"]) >= 4
    assert all(p["progress"] for p in doc["partitions"])
    assert table.returncode == 0 and "aq-003" in table.stdout, table.stdout + table.stderr
