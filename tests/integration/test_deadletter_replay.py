"""`cityops deadletter replay` against the real broker: the originals of the chosen dead
letters go back to their source topics with their keys, the rest are reported, a dry run
sends nothing, and a broker that is down is refused at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.cli.deadletter import REPLAY_HEADER
from pipeline.engine.emit import SourceRef
from pipeline.engine.stages.dead_letters import MAX_ORIGINAL_BYTES, dead_letter
from pipeline.models import DeadLetter, Rejection, RejectReason
from pipeline.topology import Topology
from tests.support.demo import demo_data, deploy
from tests.support.paths import ROOT
from tests.support.worker import free_port, produce

pytestmark = pytest.mark.integration

Found = list[tuple[bytes | None, bytes, dict[str, bytes]]]


def _reading(sensor: str) -> bytes:
    return orjson.dumps({"event_id": f"ev-{sensor}", "sensor_id": sensor, "metric": "pm25",
                         "value": 42.0, "unit": "ug/m3",
                         "observed_at": datetime.now(UTC).isoformat()})  # fmt: skip


def _letters(topology: Topology) -> list[tuple[bytes | None, bytes]]:
    """Dead letters as the stages make them: (key, value) for the dead-letter topic."""
    raw = topology.topics.name("raw_sensors")
    updates = topology.topics.name("incident_updates")

    def letter(reason: RejectReason, original: bytes, topic: str, key: bytes | None = None,
               received: timedelta = timedelta(0)) -> tuple[bytes | None, bytes]:  # fmt: skip
        emit = dead_letter(topology, Rejection(reason=reason, detail="test"), original,
                           SourceRef(topic, 0, 7), stage="normalize", key=key)  # fmt: skip
        value = DeadLetter.model_validate_json(emit.value)
        moved = value.model_copy(update={"received_at": value.received_at - received})
        return key, moved.model_dump_json().encode()

    update = orjson.dumps({"update_id": "u-1", "incident_id": "inc-9", "action": "acknowledge",
                           "unit": "310101002", "at": datetime.now(UTC).isoformat()})  # fmt: skip
    huge = b'{"sensor_id": "big", "pad": "' + b"x" * MAX_ORIGINAL_BYTES + b'"}'
    return [
        letter(RejectReason.unknown_sensor, _reading("new-1"), raw),
        letter(RejectReason.unknown_sensor, _reading("new-2"), raw),
        letter(RejectReason.unknown_incident, update, updates, key=b"inc-9"),
        letter(RejectReason.unknown_sensor, huge, raw),  # cut: skipped
        letter(RejectReason.unknown_sensor, _reading("file"), "input.jsonl"),  # not a topic
        letter(RejectReason.invalid_json, b"{nope", raw),  # another reason
        letter(RejectReason.unknown_sensor, _reading("old"), raw, received=timedelta(hours=5)),
    ]


def _cli(path: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own CLI
        [sys.executable, "-m", "pipeline", "deadletter", "replay", "-t", str(path),
         "--bootstrap", bootstrap, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


async def _read(bootstrap: str, topics: list[str], seconds: float = 4.0) -> dict[str, Found]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    found: dict[str, Found] = {topic: [] for topic in topics}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=250)).items():
                found[tp.topic] += [(r.key, r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return found


async def test_replay_sends_the_chosen_originals_back_at_least_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path, topology = await deploy(
        demo_data(), bootstrap=kafka_bootstrap, tmp_path=tmp_path, prefix=topic_prefix
    )
    letters = _letters(topology)
    deadletters = topology.topics.name("deadletter")
    for key, value in letters:
        await produce(kafka_bootstrap, deadletters, [value], key=key)
    raw, updates = topology.topics.name("raw_sensors"), topology.topics.name("incident_updates")
    reasons = ("--reason", "unknown_sensor", "--reason", "unknown_incident")

    dry = _cli(path, kafka_bootstrap, *reasons, "--since", "1h", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    summary = json.loads(dry.stdout)
    assert (summary["dry_run"], summary["matched"], summary["to_replay"]) == (True, 5, 3)
    assert summary["replayed"] == 0
    assert summary["by_topic"] == {raw: 2, updates: 1}
    assert (await _read(kafka_bootstrap, [raw, updates], 2.0)) == {raw: [], updates: []}

    done = _cli(path, kafka_bootstrap, *reasons, "--since", "1h", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["matched"], summary["replayed"]) == (5, 3)
    whys = sorted(item["why"] for item in summary["skipped"])
    assert whys[0].startswith("original truncated") and "input.jsonl" in whys[1]
    assert "3/3" in done.stderr  # the progress line
    found = await _read(kafka_bootstrap, [raw, updates])
    sensors = sorted(orjson.loads(value)["sensor_id"] for _, value, _ in found[raw])
    assert sensors == ["new-1", "new-2"]
    ((key, value, headers),) = found[updates]
    assert key == b"inc-9" and orjson.loads(value)["update_id"] == "u-1"
    assert headers[REPLAY_HEADER].decode().startswith(f"{deadletters}:")

    older = _cli(path, kafka_bootstrap, "--reason", "unknown_sensor", "--since", "6h",
                 "--until", "4h", "--json")  # fmt: skip
    assert older.returncode == 0, older.stderr
    assert json.loads(older.stdout)["replayed"] == 1  # only the letter from 5 hours ago

    plain = _cli(path, kafka_bootstrap, "--reason", "invalid_json", "--since", "1h", "--dry-run")
    assert plain.returncode == 0, plain.stderr
    assert f"would replay 1 to {raw}" in plain.stdout


def test_replay_refuses_clearly_when_the_broker_is_down(tmp_path: Path) -> None:
    started = time.monotonic()
    down = _cli(ROOT / "topologies" / "demo.yaml", f"127.0.0.1:{free_port()}",
                "--reason", "unknown_sensor", "--since", "1h")  # fmt: skip
    assert down.returncode == 1
    message = " ".join(down.stderr.split())
    assert message.startswith("error: cannot reach Kafka at 127.0.0.1:"), message
    assert message.endswith("nothing was replayed"), message
    assert time.monotonic() - started < 60
    bad = _cli(ROOT / "topologies" / "demo.yaml", "127.0.0.1:9", "--reason", "nope",
               "--since", "1h")  # fmt: skip
    assert bad.returncode == 2 and "unknown nope" in bad.stderr
