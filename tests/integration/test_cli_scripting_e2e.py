"""The CLI against the real broker, as a script uses it: `topics list --json` and its exit
status, `tail` by kind or short name, and a missing topic refused in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.cli.topics import EXIT_MISSING
from pipeline.kafka.admin import delete_topics, list_topics
from tests.support.paths import DEMO

pytestmark = pytest.mark.integration
runner = CliRunner()


def _topology(tmp_path: Path, prefix: str) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    assert 'prefix: "cityops.demo."' in text
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace('prefix: "cityops.demo."', f'prefix: "{prefix}"'), "utf-8")
    return path


def _cityops(*args: str) -> Result:
    return runner.invoke(app, list(args))


async def _send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")  # compacted topics need keys
    finally:
        await producer.stop()


def test_topics_list_json_and_exit_status(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    common = ("-t", str(_topology(tmp_path, topic_prefix)), "--bootstrap", kafka_bootstrap)
    try:
        before = _cityops("topics", "list", *common, "--json")
        assert before.exit_code == EXIT_MISSING == 3, before.output
        doc = json.loads(before.stdout)
        assert doc["planned"] == doc["missing"] == len(doc["topics"]) == 17
        assert {row["status"] for row in doc["topics"]} == {"missing"}

        assert _cityops("topics", "create", *common).exit_code == 0
        after = _cityops("topics", "list", *common, "--json")
        assert after.exit_code == 0, after.output
        doc = json.loads(after.stdout)
        assert doc["missing"] == 0 and doc["unexpected"] == 0
        city = next(r for r in doc["topics"] if r["topic"] == f"{topic_prefix}incidents.city")
        assert city["partitions"] == city["planned_partitions"]
        assert city["cleanup_policy"].startswith("compact")
    finally:
        leftovers = asyncio.run(list_topics(kafka_bootstrap, topic_prefix))
        asyncio.run(delete_topics(kafka_bootstrap, list(leftovers)))


def test_tail_by_kind_or_short_name_and_a_missing_topic(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    common = ("-t", str(_topology(tmp_path, topic_prefix)), "--bootstrap", kafka_bootstrap)
    try:
        missing = _cityops("tail", "audit", *common, "--from-beginning", "--limit", "1")
        assert missing.exit_code == 1
        assert missing.stderr.strip() == (
            f"error: topic {topic_prefix}incidents.audit does not exist on {kafka_bootstrap}: "
            f"run `cityops topics create -t {common[1]}` (or start a worker) first"
        )
        assert _cityops("topics", "create", *common).exit_code == 0
        records = [b'{"n": 1}', b'{"n": 2}']
        asyncio.run(_send(kafka_bootstrap, f"{topic_prefix}deadletter", records))
        for name in ("deadletter", f"{topic_prefix}deadletter"):
            tailed = _cityops("tail", name, *common, "--from-beginning", "--limit", "2")
            assert tailed.exit_code == 0, tailed.output
            assert sorted(tailed.stdout.splitlines()) == ['{"n": 1}', '{"n": 2}']  # 2 partitions
        asyncio.run(_send(kafka_bootstrap, f"{topic_prefix}incidents.city", [b'{"c": 1}']))
        tailed = _cityops("tail", "incidents.city", *common, "--from-beginning", "--limit", "1")
        assert tailed.stdout.splitlines() == ['{"c": 1}']
    finally:
        leftovers = asyncio.run(list_topics(kafka_bootstrap, topic_prefix))
        asyncio.run(delete_topics(kafka_bootstrap, list(leftovers)))
