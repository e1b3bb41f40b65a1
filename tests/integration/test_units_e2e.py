"""A handling unit through `pipeline.client`, against the real broker and a real worker.

Xuhui's unit follows its district's topic, acknowledges and resolves its incident, and
sees a forged, an unsigned, a replayed and an out-of-authority update refused, each with a
reply that carries its `update_id` and the reason; the state is then read back from the
worker's `/incidents` (and through `cityops incidents list`), a new feed of the same
consumer group resumes after what the first one handled, and the example service in
docs/examples acknowledges Huangpu's incident.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from pipeline.client import Incident, IncidentFeed, UnitClient, UpdateReply
from pipeline.kafka.admin import create_topics
from pipeline.rules.units import generate_private_key, private_key_pem, sign
from pipeline.settings import Settings
from pipeline.topology import parse_topology
from tests.support.paths import ROOT
from tests.support.units import Units
from tests.support.worker import WorkerProcess, produce, sensor_key

DEMO = ROOT / "topologies" / "demo.yaml"
XUHUI_UNIT = "310104/urban-management"
UNITS = Units([XUHUI_UNIT, "310101"])
BREACHING = [80.0, 90.0, 160.0, 170.0, 120.0, 130.0, 125.0, 140.0, 150.0, 135.0, 128.0, 131.0]


def _world(tmp_path: Path, prefix: str) -> tuple[Path, Any]:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["topics"]["prefix"] = prefix
    data["incidents"] = {"unit_keys": str(UNITS.write(tmp_path))}
    path = tmp_path / "units.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, parse_topology(data, tmp_path)


def _readings(sensor: str, start: datetime) -> list[bytes]:
    return [
        orjson.dumps({
            "event_id": f"{sensor}-{i}", "sensor_id": sensor, "metric": "pm25", "value": value,
            "unit": "ug/m3", "observed_at": (start + timedelta(seconds=5 * i)).isoformat(),
        })
        for i, value in enumerate(BREACHING)
    ]  # fmt: skip


def _get(port: int, path: str, worker: WorkerProcess, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), worker.report()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:  # noqa: S310  # a local test URL
                return json.loads(answer.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


async def _until_upgraded(feed: IncidentFeed, worker: WorkerProcess) -> Incident:
    """Read the district's records until its incident was upgraded (detection has seen the
    worst, so a resolve is not undone by a later upgrade)."""

    async def read() -> Incident:
        async for delivery in feed:
            assert worker.alive(), worker.report()
            if delivery.incident.last_action == "upgrade":
                return delivery.incident
        msg = "the feed ended"
        raise AssertionError(msg)

    return await asyncio.wait_for(read(), timeout=120)


def _refused(reply: UpdateReply, update_id: str, reason: str) -> None:
    assert (reply.update_id, reply.accepted, reply.reason) == (update_id, False, reason), reply


@pytest.mark.integration
async def test_a_handling_unit_through_the_client(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, topology = _world(tmp_path, topic_prefix)
    await create_topics(kafka_bootstrap, topology.topic_plan())
    start = datetime.now(UTC) - timedelta(seconds=70)
    raw = [*_readings("aq-002", start), *_readings("aq-001", start)]  # Xuhui and Huangpu
    await produce(kafka_bootstrap, topology.topics.name("raw_sensors"), raw, key_of=sensor_key)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    worker = WorkerProcess(
        path, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"w-{topic_prefix}"
    ).start()
    group = f"xuhui-{topic_prefix}"
    try:
        feed = IncidentFeed(settings, prefix=topic_prefix, group_id=group, districts=["310104"])
        async with feed:
            seen = await _until_upgraded(feed, worker)
        assert seen.areas.district == "310104" and seen.location is not None
        incident_id = seen.incident_id
        xuhui = UnitClient(settings, prefix=topic_prefix, unit=XUHUI_UNIT,
                           private_key=UNITS.keys[XUHUI_UNIT])  # fmt: skip
        async with xuhui:
            acked = xuhui.update(incident_id, "acknowledge", note="crew 7")
            value = acked.model_dump_json().encode()
            headers = [sign(value, UNITS.keys[XUHUI_UNIT])]
            reply = await xuhui.send_raw(incident_id, acked.update_id, value, headers)
            assert (reply.accepted, reply.state, reply.update_id) == (
                True, "acknowledged", acked.update_id,
            )  # fmt: skip
            resolved = await xuhui.send(incident_id, "resolve", note="fixed")
            assert (resolved.accepted, resolved.state) == (True, "resolved"), resolved

            # Forged: Xuhui's unit named, someone else's key; and the city's code claimed.
            forged = xuhui.update(incident_id, "reopen")
            forged_value = forged.model_dump_json().encode()
            intruder = [sign(forged_value, generate_private_key())]
            reply = await xuhui.send_raw(incident_id, forged.update_id, forged_value, intruder)
            _refused(reply, forged.update_id, "bad_signature")
            city = forged.model_copy(update={"unit": "310000", "update_id": "forged-city"})
            city_value = city.model_dump_json().encode()
            reply = await xuhui.send_raw(incident_id, city.update_id, city_value,
                                         [sign(city_value, generate_private_key())])  # fmt: skip
            _refused(reply, "forged-city", "unknown_unit")
            # Unsigned.
            bare = xuhui.update(incident_id, "close")
            reply = await xuhui.send_raw(
                incident_id, bare.update_id, bare.model_dump_json().encode(), []
            )
            _refused(reply, bare.update_id, "unsigned")
            # Replayed: the accepted acknowledgement's very bytes, again.
            reply = await xuhui.send_raw(incident_id, acked.update_id, value, headers)
            _refused(reply, acked.update_id, "duplicate")
        huangpu = UnitClient(settings, prefix=topic_prefix, unit="310101",
                             private_key=UNITS.keys["310101"])  # fmt: skip
        async with huangpu:  # authentic, but no authority in Xuhui
            reply = await huangpu.send(incident_id, "close")
            _refused(reply, reply.update_id, "unit_outside_area")

        # The state, read back from the worker's lifecycle table.
        listed = _get(worker.web_port, "/incidents?area=310104&state=resolved", worker)
        assert [i["incident_id"] for i in listed["incidents"]] == [incident_id]
        one = _get(worker.web_port, f"/incidents/{incident_id}", worker)["incident"]
        assert (one["state"], one["version"]) == ("resolved", resolved.version)
        env = {**os.environ, "COLUMNS": "200"}
        cli = subprocess.run(
            [sys.executable, "-m", "pipeline", "incidents", "list", "--area", "310104",
             "--worker", f"http://127.0.0.1:{worker.web_port}", "--json"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert [json.loads(line)["state"] for line in cli.stdout.splitlines()] == ["resolved"]

        # The group resumes after what it handled: only the later versions come.
        async with IncidentFeed(settings, prefix=topic_prefix, group_id=group,
                                districts=["310104"]) as again:  # fmt: skip
            later = await asyncio.wait_for(again.__anext__(), timeout=60)
        assert later.incident.version > seen.version, (later, seen)

        # The example service acknowledges Huangpu's incident.
        key_file = tmp_path / "huangpu.pem"
        key_file.write_bytes(private_key_pem(UNITS.keys["310101"]))
        spec = importlib.util.spec_from_file_location(
            "ack_desk", ROOT / "docs/examples/ack_desk.py"
        )
        assert spec is not None and spec.loader is not None
        desk = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(desk)
        desk_replies = await asyncio.wait_for(
            desk.run(settings, prefix=topic_prefix, district="310101", unit="310101",
                     key_file=key_file, group_id=f"desk-{topic_prefix}",
                     on_reply=lambda _: None, stop_after=1),
            timeout=120,
        )  # fmt: skip
        assert [(r.accepted, r.state) for r in desk_replies] == [(True, "acknowledged")]
    finally:
        worker.stop()
