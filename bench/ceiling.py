"""Kafka's own perf tools on this broker: the ceiling for our message size.

Why Java: ProducerPerformance / ConsumerPerformance are what Kafka itself measures with,
so the ratio "Python / Kafka" says how much of the broker a Python process can use.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

from pipeline.kafka.admin import create_topics

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka" / "kafka.sh"


class _Topic:
    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = partitions
        self.replication = 1
        self.config: dict[str, str] = {}


def classpath() -> str:
    out = subprocess.run(
        [str(KAFKA_SH), "classpath"], check=True, capture_output=True, text=True, timeout=120
    )
    return out.stdout.strip()


def kafka_version(cp: str) -> str:
    found = re.search(r"kafka-clients-([0-9][^/:]*)\.jar", cp) or re.search(
        r"/kafka/([0-9][^/:]*)/", cp
    )
    return found.group(1) if found else "?"


def _java(cp: str, main: str, args: list[str], timeout: float) -> str:
    out = subprocess.run(
        ["java", "-Xmx512m", "-cp", cp, main, *args],
        check=True, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return out.stdout


def parse_producer(text: str) -> float:
    """records/sec of ProducerPerformance's final summary line."""
    last = [line for line in text.splitlines() if "records sent" in line][-1]
    found = re.search(r"([0-9.]+) records/sec", last)
    assert found, last
    return float(found.group(1))


def parse_consumer(text: str) -> tuple[float, float]:
    """(nMsg.sec overall, fetch.nMsg.sec) of ConsumerPerformance's CSV line."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values, strict=False))
    return float(row["nMsg.sec"]), float(row["fetch.nMsg.sec"])


def run(
    bootstrap: str, topic: str, record_size: int, records: int, partitions: int
) -> dict[str, Any]:
    """Produce ``records`` of ``record_size`` bytes, then consume them back."""
    cp = classpath()
    asyncio.run(create_topics(bootstrap, [_Topic(topic, partitions)]))
    produced = _java(
        cp, "org.apache.kafka.tools.ProducerPerformance",
        ["--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
         "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
         "acks=1", "linger.ms=5", "batch.size=524288"],
        timeout=120,
    )  # fmt: skip
    consumed = _java(
        cp, "org.apache.kafka.tools.ConsumerPerformance",
        ["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
         "--timeout", "60000"],
        timeout=120,
    )  # fmt: skip
    overall, fetch = parse_consumer(consumed)
    return {
        "kafka": kafka_version(cp),
        "records": records,
        "record_bytes": record_size,
        "partitions": partitions,
        "producer_msgs_per_s": parse_producer(produced),
        "consumer_msgs_per_s": fetch,
        "consumer_overall_msgs_per_s": overall,
    }
