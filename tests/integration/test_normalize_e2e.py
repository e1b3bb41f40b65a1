"""The first slice through a real broker: raw topic -> normalize worker -> readings + dead letters.

Good and bad messages go in with aiokafka; a real `cityops worker` process runs; exactly the
valid readings arrive on the readings topic and every bad message arrives on the dead-letter
topic with its reason and its original bytes. The worker is still alive at the end.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.request
from pathlib import Path

import orjson
import pytest

from pipeline.kafka.admin import create_topics
from pipeline.topology import load_topology
from tests.support.paths import ROOT
from tests.support.worker import WorkerProcess, consume_until, produce, readings_in, sensor_key

DEMO = ROOT / "topologies" / "demo.yaml"


def _reading(event_id: str, sensor: str, metric: str, value: object, **extra: object) -> bytes:
    body = {
        "event_id": event_id,
        "sensor_id": sensor,
        "metric": metric,
        "value": value,
        "unit": "ug/m3",
        "observed_at": "2026-11-28T08:00:00+08:00",
        **extra,
    }
    return orjson.dumps(body)


NGSI_V2 = orjson.dumps({
    "id": "AirQualityObserved-aq-001", "type": "AirQualityObserved",
    "dateObserved": {"type": "DateTime", "value": "2026-11-28T08:00:00+08:00"},
    "refDevice": {"type": "Relationship", "value": "aq-001"},
    "pm25": {"type": "Number", "value": 82, "metadata": {"unitCode": {"value": "GQ"}}},
    "pm10": {"type": "Number", "value": 0.1, "metadata": {"unitCode": {"value": "GP"}}},
    "airQualityIndex": {"type": "Number", "value": 110},  # no 'aqi' in the demo catalogue
})  # fmt: skip
OPEN311 = orjson.dumps({
    "service_request_id": "638344", "status": "open", "service_code": "water_leak",
    "description": "Water main burst near the market, call me on 13812345678",
    "requested_datetime": "2026-11-28T08:00:00+08:00",
})  # fmt: skip
GOOD = [
    _reading("good-1", "aq-001", "pm25", 42.0),
    _reading("good-2", "aq-002", "pm25", 0.120, unit="mg/m3"),  # converted to 120 ug/m3
    _reading("good-3", "aq-001", "pm10", 88),
]
BAD = {
    b"{not json": "invalid_json",
    _reading("bad-type", "aq-001", "pm25", "forty"): "schema_violation",
    orjson.dumps(
        {"event_id": "bad-missing", "sensor_id": "aq-001", "metric": "pm25", "value": 1.0}
    ): "schema_violation",
    orjson.dumps({"hello": "world"}): "unknown_format",
    _reading("bad-sensor", "no-such-sensor", "pm25", 10.0): "unknown_sensor",
    _reading("bad-range", "aq-001", "pm25", 99999.0): "out_of_range",
    _reading("big", "aq-001", "pm25", 1.0, note="x" * 5000): "oversized",
}


@pytest.mark.integration
def test_worker_sends_valid_readings_on_and_dead_letters_the_rest(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topology = load_topology(DEMO)
    topics = topology.topics.model_copy(update={"prefix": topic_prefix})
    asyncio.run(
        create_topics(kafka_bootstrap, topology.model_copy(update={"topics": topics}).topic_plan())
    )
    raw, readings, dead, reports = (
        topics.name(k) for k in ("raw_sensors", "readings", "deadletter", "reports")
    )
    messages = [*GOOD[:2], *BAD, GOOD[2], NGSI_V2]
    asyncio.run(produce(kafka_bootstrap, raw, messages, key_of=sensor_key))
    asyncio.run(produce(kafka_bootstrap, topics.name("raw_reports"), [OPEN311]))
    # Someone else wrote garbage onto an internal topic: both readers dead-letter it.
    asyncio.run(produce(kafka_bootstrap, readings, [b"not a reading"], key=b"310101"))

    with WorkerProcess(
        DEMO, kafka_bootstrap, tmp_path, prefix=topic_prefix, worker_id=f"w-{topic_prefix}",
        env={"CITYOPS_MAX_MESSAGE_BYTES": "4096"},
    ) as worker:  # fmt: skip
        found = asyncio.run(
            consume_until(
                kafka_bootstrap,
                [readings, dead, reports],
                # readings: the good ones, two from NGSI and the garbage; one report;
                # a dead letter per bad message and one for the garbage
                len(GOOD) + 2 + 1 + 1 + len(BAD) + 1,
                worker=worker,
            )  # fmt: skip
        )
        assert worker.alive(), worker.report()
        metrics = (
            urllib.request.urlopen(  # noqa: S310 - our own worker on localhost
                f"http://127.0.0.1:{worker.web_port}/metrics", timeout=10
            )
            .read()
            .decode()
        )
    # the attribute no catalogue metric takes is counted and logged with its sensor
    assert (
        'cityops_unmapped_attributes_total{attribute="airQualityIndex",format="ngsi-v2"} 1.0'
        in metrics
    )
    assert "sensor aq-001: ngsi-v2 attribute 'airQualityIndex'" in worker.log()

    out = readings_in(found[readings])
    canonical = [r for r in out if r["source_format"] == "canonical"]
    assert sorted(r["event_id"] for r in canonical) == ["good-1", "good-2", "good-3"]
    ngsi = {r["metric"]: r for r in out if r["source_format"] != "canonical"}
    assert {m: (r["sensor_id"], r["value"]) for m, r in ngsi.items()} == {
        "pm25": ("aq-001", 82.0), "pm10": ("aq-001", pytest.approx(100.0)),
    }  # fmt: skip
    (report,) = (orjson.loads(value) for _, value in found[reports])
    assert report["category"] == "water_leak" and report["report_id"].endswith("638344")
    assert "13812345678" not in report["description"] and "138****5678" in report["description"]
    by_id = {r["event_id"]: r for r in out}
    assert by_id["good-2"]["value"] == pytest.approx(120.0)
    assert by_id["good-2"]["unit"] == "ug/m3"
    assert by_id["good-1"]["areas"]["district"] == "310101"
    assert by_id["good-1"]["areas"]["street"] == "310101002"
    assert by_id["good-1"]["observed_at"].startswith("2026-11-28T00:00:00")

    letters = [orjson.loads(value) for _, value in found[dead]]
    internal = [letter for letter in letters if letter["source_topic"] == readings]
    assert [letter["stage"] for letter in internal] == ["analyze"], "dead-lettered once"
    assert {base64.b64decode(letter["original"]) for letter in internal} == {b"not a reading"}
    letters = [letter for letter in letters if letter["source_topic"] != readings]
    got = {base64.b64decode(letter["original"]): letter["reason"] for letter in letters}
    assert got == BAD
    assert len(letters) == len(BAD), "each bad message is dead-lettered exactly once"
    for letter in letters:
        assert letter["source_topic"] == raw
        assert letter["offset"] is not None and letter["detail"]
