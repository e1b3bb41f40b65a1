"""The simulator into the real broker: what Kafka holds is exactly the deterministic stream."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import typer
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from pipeline.cli.simulate import simulate_command
from pipeline.kafka.admin import create_topics, delete_topics, list_topics
from pipeline.kafka.producer import produce
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology, load_topology
from tests.support.paths import ROOT
from tests.support.worker import consume_until

DEMO = ROOT / "topologies" / "demo.yaml"
SHANGHAI = ROOT / "topologies" / "shanghai.yaml"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate_command)
    app.command("noop")(lambda: None)
    return app


def _with_prefix(topology: Topology, prefix: str) -> Topology:
    topics = topology.topics.model_copy(update={"prefix": prefix})
    return topology.model_copy(update={"topics": topics})


def _cleanup(bootstrap: str, prefix: str) -> None:
    names = list(asyncio.run(list_topics(bootstrap, prefix)))
    asyncio.run(delete_topics(bootstrap, names))


@pytest.mark.integration
def test_simulate_produces_exactly_the_stream_it_writes_to_a_file(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "demo.yaml"
    text = DEMO.read_text(encoding="utf-8")
    path.write_text(text.replace('prefix: "cityops.demo."', f'prefix: "{topic_prefix}"'), "utf-8")
    topology = load_topology(path)
    raw = [topology.topics.name("raw_sensors"), topology.topics.name("raw_reports")]
    args = [
        "simulate", "--topology", str(path), "--rate", "3000", "--duration", "2s",
        "--seed", "3", "--start", "2026-11-25T08:00:00+08:00", "--speedup", "30",
        "--fault-rate", "0.02", "--reports-per-minute", "60",
    ]  # fmt: skip
    runner = CliRunner()
    missing = runner.invoke(_app(), [*args, "--bootstrap", kafka_bootstrap])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output and "topics create" in missing.output

    asyncio.run(create_topics(kafka_bootstrap, topology.topic_plan()))
    try:
        sent = runner.invoke(_app(), [*args, "--bootstrap", kafka_bootstrap])
        assert sent.exit_code == 0, sent.output
        assert "events/s" in sent.output
        written = runner.invoke(_app(), [*args, "--output", str(tmp_path / "s.jsonl")])
        assert written.exit_code == 0, written.output

        lines = [orjson.loads(line) for line in (tmp_path / "s.jsonl").read_bytes().splitlines()]
        stream = [
            (
                line["topic"],
                line["key"].encode(),
                line["value_text"].encode()
                if "value_text" in line
                else orjson.dumps(line["value"]),
            )
            for line in lines
        ]
        assert len(stream) > 6000
        found = asyncio.run(consume_until(kafka_bootstrap, raw, len(stream), settle=2.0))
        got = [(topic, key, value) for topic in raw for key, value in found[topic]]
        # All of it (or, had the broker fallen behind, exactly a prefix of it), nothing else.
        assert len(got) > 0.9 * len(stream)
        assert Counter(got) == Counter(stream[: len(got)])
        assert {t for t, _, _ in got} == set(raw)
        assert sum(1 for line in lines[: len(got)] if "fault" in line) > 50

        # Each sensor's readings stay in order: one key, one partition.
        per_key_sent: dict[bytes, list[bytes]] = defaultdict(list)
        for _, key, value in stream[: len(got)]:
            per_key_sent[key].append(value)
        per_key_got: dict[bytes, list[bytes]] = defaultdict(list)
        for key, value in found[raw[0]] + found[raw[1]]:
            assert key is not None
            per_key_got[key].append(value)
        assert per_key_got == per_key_sent
    finally:
        _cleanup(kafka_bootstrap, topic_prefix)


@pytest.mark.integration
def test_unthrottled_produce_delivers_every_record_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topology = _with_prefix(load_topology(SHANGHAI), topic_prefix)
    raw = [topology.topics.name("raw_sensors"), topology.topics.name("raw_reports")]
    asyncio.run(create_topics(kafka_bootstrap, [s for s in topology.topic_plan() if s.name in raw]))
    try:
        sim = Simulator.for_rate(
            topology, rate=50_000, seed=8, start=datetime(2026, 11, 25, tzinfo=UTC),
            fault_rate=0.01, reports_per_minute=600,
        )  # fmt: skip
        events = list(itertools.islice(sim.events(), 30_000))
        progress: list[int] = []
        stats = asyncio.run(
            produce(events, bootstrap=kafka_bootstrap, progress=lambda s: progress.append(s.acked))
        )
        assert stats.queued == stats.acked == len(events)
        assert stats.bytes == sum(len(e.value) for e in events)
        assert dict(stats.by_topic) == dict(Counter(e.topic for e in events))
        assert progress and progress[-1] == len(events)

        async def read_all() -> Counter[tuple[str, bytes, bytes]]:
            consumer = AIOKafkaConsumer(
                *raw, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                enable_auto_commit=False, group_id=None,
            )  # fmt: skip
            await consumer.start()
            seen: Counter[tuple[str, bytes, bytes]] = Counter()
            try:
                end = await consumer.end_offsets(list(consumer.assignment()))
                total = sum(end.values())
                assert total == len(events)
                while sum(seen.values()) < total:
                    batch = await consumer.getmany(timeout_ms=1000)
                    for tp, records in batch.items():
                        for record in records:
                            assert record.key is not None and record.value is not None
                            seen[(tp.topic, record.key, record.value)] += 1
            finally:
                await consumer.stop()
            return seen

        assert asyncio.run(read_all()) == Counter((e.topic, e.key, e.value) for e in events)
    finally:
        _cleanup(kafka_bootstrap, topic_prefix)
