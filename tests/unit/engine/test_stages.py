"""Stages apply each record exactly once to their keyed state, even when Kafka replays it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import yaml

from pipeline.aggregates.codec import to_micros
from pipeline.engine.batches import positions
from pipeline.engine.emit import ORIGIN_HEADER, ORIGIN_SPAN, Position, Record, SourceRef, origin_of
from pipeline.engine.routing import Pipeline
from pipeline.engine.stages import (
    AggregateStage,
    DetectStage,
    NormalizeStage,
    incident_event_emits,
    record_key_of,
)
from pipeline.engine.stages.detect import EVENTS_MESSAGE_BYTES
from pipeline.ingest.normalize import Unmapped
from pipeline.models import AdminCodes, Reading, ReadingBatch, row_model
from pipeline.topology import load_topology, parse_topology
from tests.support.paths import DEMO, FIXTURES

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _reading(i: int, value: float) -> Reading:
    return Reading(
        event_id=f"e{i}", sensor_id="aq-001", metric="pm25", value=value, unit="ug/m3",
        observed_at=T0 + timedelta(seconds=20 * i),
        areas=AdminCodes(district="310101", street="310101002"),
    )  # fmt: skip


def _at(i: int) -> list[Position | None]:
    """The position of a one-reading batch at offset `i` of readings partition 0."""
    return [Position("r:0", i)]


def _detect(stage: DetectStage, reading: Reading, i: int) -> list[Any]:
    """Detection's events for one reading at offset `i`, as the messages it would send."""
    events = stage.on_readings("310101", ReadingBatch.of([reading]), _at(i))
    return incident_event_emits(stage.topology, events)


def _raw(value: bytes, offset: int, topic: str = "raw") -> Record:
    return Record(topic, None, value, (), 2 if topic == "raw" else 0, offset)


def _live(reading: Reading) -> ReadingBatch:
    """A one-reading batch that arrived when it was observed (a live stream) on raw
    partition "r:0", with the intake's progress on that partition."""
    arrived = to_micros(reading.observed_at)
    batch = ReadingBatch.of([reading], [arrived])
    return batch.model_copy(update={"progress": {"r:0": arrived}})


def _run_aggregate(backing: dict[str, Any], offsets: range) -> list[Any]:
    stage = AggregateStage(load_topology(DEMO), backing)
    rows = []
    for i in offsets:
        rows += map(row_model, stage.on_readings("310101", _live(_reading(i, 10.0 + i)), _at(i)))
    stage.states.persist()
    return rows


def test_a_replay_after_restart_does_not_count_readings_twice() -> None:
    backing: dict[str, Any] = {}
    # The district's other registered sensors stay silent: after the idle timeout (10 min
    # of arrival time) they stop holding windows back, so 60 readings 20 s apart close
    # windows.
    first = _run_aggregate(backing, range(0, 40))
    # Killed after the table was written but before offsets 30..39 were committed:
    again = _run_aggregate(backing, range(30, 60))
    rows = {(r.level, r.area_code, r.window_start): r for r in first + again}
    whole = _run_aggregate({}, range(0, 60))
    assert len(whole) > 10
    assert rows == {(r.level, r.area_code, r.window_start): r for r in whole}
    first_window = rows[("street", "310101002", T0)]
    assert first_window.count == 3  # readings 0, 1, 2 (20 s apart) fall in 08:00-08:01
    assert first_window.sum == 10.0 + 11.0 + 12.0


def test_detection_replay_emits_nothing_new() -> None:
    topology = load_topology(DEMO)
    backing: dict[str, Any] = {}
    stage = DetectStage(topology, backing, {})
    values = [80, 90, 95, 100, 100, 100]
    emitted = []
    for i, value in enumerate(values):
        emitted += _detect(stage, _reading(i, value), i)
    stage.states.persist()
    assert [e.reason for e in emitted] == ["open"] + ["evidence"] * (len(emitted) - 1)
    restarted = DetectStage(topology, backing, {})
    replayed = []
    for i, value in enumerate(values):
        replayed += _detect(restarted, _reading(i, value), i)
    assert replayed == []


def test_normalize_stage_keys_readings_by_district_and_dead_letters_with_origin() -> None:
    stage = NormalizeStage(load_topology(DEMO))
    good = orjson.dumps({
        "event_id": "x", "sensor_id": "aq-002", "metric": "pm25", "value": 1.5,
        "unit": "ug/m3", "observed_at": "2026-11-28T08:00:00Z",
    })  # fmt: skip
    (reading,) = stage.on_raw([_raw(good, 41)]).emits
    assert (reading.kind, reading.key, reading.count) == ("reading", b"310104", 1)
    (letter,) = stage.on_raw([_raw(b"\xff", 42)]).emits
    body = orjson.loads(letter.value)
    assert (letter.kind, letter.reason, body["offset"], body["partition"]) == (
        "deadletter", "invalid_json", 42, 2,
    )  # fmt: skip


def test_a_located_report_in_a_topology_without_boundaries_is_placed_by_its_area() -> None:
    stage = NormalizeStage(load_topology(DEMO))  # demo.yaml has no boundary polygons
    report = orjson.dumps({
        "report_id": "r-1", "channel": "app", "category": "water_leak",
        "description": "水管漏水 13812345678", "lat": 31.2385, "lon": 121.482,
        "area": "310101002", "reported_at": "2026-11-28T08:00:00Z",
    })  # fmt: skip
    (emit,) = stage.on_raw([_raw(report, 1, "reports.raw")]).emits
    body = orjson.loads(emit.value)
    assert emit.kind == "report", body
    assert body["areas"]["street"] == "310101002" and body["areas"]["district"] == "310101"
    assert body["location"] == {"lat": 31.2385, "lon": 121.482}
    assert "13812345678" not in body["description"]


def test_detection_lateness_zero_opens_the_incident_on_the_completing_reading() -> None:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["detection"] = {"allowed_lateness": "0s"}
    topology = parse_topology(data, DEMO.parent)
    assert topology.detection_lateness == timedelta(0)
    assert topology.aggregation.allowed_lateness == timedelta(seconds=10)  # unchanged
    stage = DetectStage(topology, {}, {})
    first = _detect(stage, _reading(0, 80.0), 0)
    second = _detect(stage, _reading(1, 90.0), 1)
    assert first == [] and [e.reason for e in second] == ["open"]  # no wait for a 3rd reading


def test_detection_persists_one_entry_per_touched_rule_state_under_its_record_key() -> None:
    topology = load_topology(DEMO)
    backing: dict[str, Any] = {}
    stage = DetectStage(topology, backing, {})
    pm25_rules = [r for r in topology.rules if str(r.metric) == "pm25"]
    _detect(stage, _reading(0, 10.0), 0)
    first = stage.states.persist()
    assert first == len(backing) >= 1
    assert all(record_key_of(key) == "310101" for key in backing)
    assert len(backing) <= len(pm25_rules)  # one entry per rule and subject, not a bundle
    other = _reading(1, 11.0).model_copy(update={"sensor_id": "aq-002", "event_id": "o1"})
    _detect(stage, other, 1)
    touched = stage.states.persist()
    # A second sensor writes its own sensor-scoped states (area-scoped ones are shared).
    assert 1 <= touched <= first
    assert stage.persist() == 0, "nothing changed since the last persist"


def test_a_normalizer_replay_is_applied_once_by_its_raw_origin() -> None:
    """Killed between its send and its offset commit, the normalizer re-emits the same
    readings at new readings-topic offsets; their origin header gives them away."""
    topology = load_topology(DEMO)
    raw = [
        orjson.dumps(
            {
                "event_id": f"r{i}",
                "sensor_id": "aq-001",
                "metric": "pm25",
                "value": 70.0 + i,
                "unit": "ug/m3",
                "observed_at": (T0 + timedelta(seconds=20 * i)).isoformat(),
            }
        )  # fmt: skip
        for i in range(60)
    ]

    def normalize(offsets: range) -> list[Any]:
        stage = NormalizeStage(topology)  # a restarted process: its duplicate filter is empty
        return [e for i in offsets for e in stage.on_raw([_raw(raw[i], i)]).emits]

    def analyze(emitted: list[Any]) -> tuple[list[Any], list[tuple[str | None, bytes]]]:
        aggregate = AggregateStage(topology, {})
        detect = DetectStage(topology, {}, {})
        rows, incidents = [], []
        for offset, emit in enumerate(emitted):  # each at its own readings-topic offset
            batch = ReadingBatch.model_validate_json(emit.value)
            where = positions(batch, SourceRef("readings", 0, offset))
            rows += aggregate.on_readings(emit.key.decode(), batch, where)
            events = detect.on_readings(emit.key.decode(), batch, where)
            for message in incident_event_emits(topology, events):
                actions = [i["last_action"] for i in orjson.loads(message.value)]
                incidents += [(action, message.key) for action in actions]
        return [row_model(row) for row in rows + aggregate.finish()], incidents

    replayed = normalize(range(0, 40)) + normalize(range(30, 60))  # 30..39 twice
    assert sum(emit.count for emit in replayed) == 70
    first = ReadingBatch.model_validate_json(replayed[0].value)
    assert positions(first, SourceRef("readings", 0, 0)) == [Position("raw:2", 0)]
    again = ReadingBatch.model_validate_json(replayed[41].value)
    assert positions(again, SourceRef("readings", 0, 41)) == [Position("raw:2", 31 * ORIGIN_SPAN)]
    rows, incidents = analyze(replayed)
    clean_rows, clean_incidents = analyze(normalize(range(60)))
    assert sum(r.count for r in rows if r.level == "street") == 60
    assert rows == clean_rows
    assert incidents == clean_incidents
    assert ("open", incidents[0][1]) in incidents  # readings from 76 on breach pm25 (75)


def test_origin_headers_that_are_not_ours_are_ignored() -> None:
    assert origin_of(None) is None
    assert origin_of([("other", b"x")]) is None
    assert origin_of([(ORIGIN_HEADER, b"raw:not-a-number:1:0")]) is None
    assert origin_of([(ORIGIN_HEADER, f"raw:0:1:{ORIGIN_SPAN}".encode())]) is None
    assert origin_of([(ORIGIN_HEADER, b"city.raw:3:7:2")]) == SourceRef(
        "city.raw", 3, 7 * ORIGIN_SPAN + 2
    )


def test_the_first_record_of_a_new_state_is_remembered_as_applied() -> None:
    """A state created by a record must not forget that record: replayed, it is skipped."""
    backing: dict[str, Any] = {}
    stage = AggregateStage(load_topology(DEMO), backing)
    stage.on_readings("310101", ReadingBatch.of([_reading(0, 10.0)]), _at(0))
    stage.persist()
    restarted = AggregateStage(load_topology(DEMO), backing)
    restarted.on_readings("310101", ReadingBatch.of([_reading(0, 10.0)]), _at(0))  # the replay
    rows = map(row_model, restarted.finish())
    assert [r.count for r in rows if r.level == "street"] == [1]


def test_a_readings_batch_split_into_readings_gives_what_the_whole_gives() -> None:
    """A suspect batch is replayed one reading at a time: same rows and events, and each
    reading keeps its place (a replay of the split is recognised as one of the whole)."""
    topology = load_topology(DEMO)
    raw = [
        orjson.dumps(
            {
                "event_id": f"s{i}",
                "sensor_id": "aq-001",
                "metric": "pm25",
                "value": 70.0 + i,
                "unit": "ug/m3",
                "observed_at": (T0 + timedelta(seconds=20 * i)).isoformat(),
            }
        )  # fmt: skip
        for i in range(40)
    ]
    records = [Record("raw", None, value, (), None, i) for i, value in enumerate(raw)]
    (message,) = NormalizeStage(topology).on_raw(records).emits
    record = Record(message.topic, message.key, message.value, (), 0, 3)

    def analyze(units: list[Record]) -> tuple[list[Any], list[Any]]:
        """Rows, and detection's events one by one (a batch groups an incident's events
        in one message; one reading at a time gives one message each)."""
        pipeline = Pipeline(topology, lambda _name: {})
        out = [pipeline.handle([unit]) for unit in units]
        done = pipeline.finish(T0 + timedelta(hours=1))
        rows = [row for o in [*out, done] for row in o.rows]
        events = [event for o in [*out, done] for e in o.emits for event in orjson.loads(e.value)]
        return rows, events

    pipeline = Pipeline(topology, lambda _name: {})
    units = pipeline.split(record)
    assert [unit.element for unit in units] == list(range(40))
    assert analyze(units) == analyze([record])
    whole = positions(ReadingBatch.model_validate_json(record.value), record.source)
    split = [
        positions(ReadingBatch.model_validate_json(unit.value), unit.source)[0] for unit in units
    ]
    assert split == whole


def test_a_long_streak_in_one_batch_is_split_into_messages_the_broker_accepts() -> None:
    stage = DetectStage(load_topology(DEMO), {}, {})
    readings = [_reading(i, 160.0) for i in range(3000)]  # one streak: one incident
    batch = ReadingBatch.of(readings)
    where = [Position("r:0", i) for i in range(len(readings))]
    events = stage.on_readings("310101", batch, where)
    messages = incident_event_emits(stage.topology, events)
    assert len({m.key for m in messages}) == 1 and len(messages) > 1
    assert all(len(m.value) <= EVENTS_MESSAGE_BYTES for m in messages)
    snapshots = [doc for m in messages for doc in orjson.loads(m.value)]
    assert [s["last_action"] for s in snapshots] == [str(e.action) for e in events]
    assert sum(m.count for m in messages) == len(events)
    assert [m.reason for m in messages] == [
        orjson.loads(m.value)[-1]["last_action"] for m in messages
    ]


def test_the_intake_reports_attributes_that_map_to_no_catalogue_metric() -> None:
    """Not dead letters (the entity's other attributes go through), but not silent: the
    pipeline's output counts them by format, sensor and attribute for the worker."""
    topology = load_topology(FIXTURES / "normalize-city.yaml")
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:aq-001",
        "type": "AirQualityObserved",
        "dateObserved": T0.isoformat(),
        "pm25": 40,
        "airQualityIndex": 80,
        "aqiPlus": 3,
    }
    raw = [orjson.dumps({**entity, "pm25": 40 + i}) for i in range(3)]  # fmt: skip
    records = [_raw(value, i, topology.topics.name("raw_sensors")) for i, value in enumerate(raw)]
    out = Pipeline(topology, lambda _name: {}).handle(records)
    assert out.unmapped == Counter({
        Unmapped("ngsi-ld", "aq-001", "airQualityIndex", "aqi"): 3,
        Unmapped("ngsi-ld", "aq-001", "aqiPlus", "aqiPlus"): 3,
    })  # fmt: skip
    assert [e.kind for e in out.emits].count("deadletter") == 0
    assert sum(e.count for e in out.emits if e.kind == "reading") == 3
