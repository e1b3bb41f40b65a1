"""`cityops dry-run`: the worker's stages over a mixed-format file, outputs asserted exactly."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from typer.testing import CliRunner

from pipeline.cli.dryrun import dry_run_command
from pipeline.models import AuditEvent, DeadLetter, ReadingBatch
from pipeline.rules.audit import verify
from tests.support.paths import TOPOLOGIES
from tests.support.units import KEYS_FILE, Units, update_value

P = "cityops.demo."
runner = CliRunner()
app = typer.Typer()
app.command()(dry_run_command)

# Two district polygons and one street polygon, so located reports resolve (demo.yaml has
# no boundaries of its own).
GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"code": code},
         "geometry": {"type": "Polygon", "coordinates": [[
             [w, s], [e, s], [e, n], [w, n], [w, s]]]}}
        for code, (w, s, e, n) in {
            "310101": (121.47, 31.21, 121.50, 31.25),
            "310101002": (121.475, 31.235, 121.49, 31.25),
            "310104": (121.42, 31.17, 121.46, 31.21),
        }.items()
    ],
}  # fmt: skip

LINES = [
    # pm25 at aq-001 (street 310101002): 80 (blue), 130 (yellow: 2 in a row -> open),
    # 160 (orange: upgrade), 50 mg/m3-converted (below clear 60 -> auto resolve)
    {"sensor_id": "aq-001", "metric": "pm25", "value": 80, "unit": "ug/m3",
     "observed_at": "2026-05-01T00:00:10Z"},
    {"id": "AirQualityObserved-aq-001-1", "type": "AirQualityObserved",
     "dateObserved": {"type": "DateTime", "value": "2026-05-01T08:00:40+08:00"},
     "refDevice": {"type": "Relationship", "value": "aq-001"},
     "pm25": {"type": "Number", "value": 130, "metadata": {"unitCode": {"value": "GQ"}}},
     "pm10": {"type": "Number", "value": 100, "metadata": {"unitCode": {"value": "GQ"}}}},
    {"sensor_id": "aq-002", "metric": "pm25", "value": 40, "unit": "ug/m3",
     "observed_at": "2026-05-01T00:00:30Z"},
    {"@iot.id": 901, "phenomenonTime": "2026-05-01T00:01:20Z", "result": 160,
     "Datastream": {"@iot.id": 1}},
    {"sensor_id": "aq-001", "metric": "pm25", "value": 0.05, "unit": "mg/m3",
     "observed_at": "2026-05-01T00:02:10Z"},
    # three water leaks within 300 m and 30 min (two canonical, one Open311): a cluster
    {"report_id": "r-1", "channel": "hotline", "category": "water_leak",
     "description": "路面冒水 13912345678", "reported_at": "2026-05-01T00:00:00Z",
     "lat": 31.2400, "lon": 121.4800},
    {"report_id": "r-2", "channel": "app", "category": "water_leak",
     "description": "water on the road", "reported_at": "2026-05-01T00:05:00Z",
     "lat": 31.2405, "lon": 121.4805},
    {"service_request_id": "r-3", "status": "open", "service_code": "water_leak",
     "service_name": "Water leak", "description": "Water main burst, contact 021-63211234",
     "requested_datetime": "2026-05-01T08:10:00+08:00", "lat": 31.2402, "long": 121.4795},
    # an urgent category opens at once
    {"report_id": "r-4", "channel": "hotline", "category": "gas_smell",
     "description": "gas smell in the stairwell", "reported_at": "2026-05-01T00:03:00Z",
     "area": "310104014"},
    "not json {",
    {"sensor_id": "ghost-9", "metric": "pm25", "value": 10, "unit": "ug/m3",
     "observed_at": "2026-05-01T00:00:20Z"},
    {"sensor_id": "aq-002", "metric": "pm25", "value": -5, "unit": "ug/m3",
     "observed_at": "2026-05-01T00:00:50Z"},
    {"sensor_id": "aq-001", "metric": "pm25", "value": 80, "unit": "ug/m3",
     "observed_at": "2026-05-01T00:00:10Z"},  # a re-send of line 1
]  # fmt: skip


def world(tmp_path: Path, lines: list[object] = LINES) -> tuple[Path, Path]:
    """A demo topology with boundaries, and the input file."""
    text = (TOPOLOGIES / "demo.yaml").read_text(encoding="utf-8")
    topology = tmp_path / "demo.yaml"
    topology.write_text(text + "\nboundaries: demo.geojson\n", encoding="utf-8")
    (tmp_path / "demo.geojson").write_text(json.dumps(GEOJSON), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
                  for line in lines) + "\n\n",
        encoding="utf-8",
    )  # fmt: skip
    return topology, events


def dry_run(topology: Path, events: Path, out: Path, *extra: str) -> str:
    args = ["--topology", str(topology), "--input", str(events), "--out", str(out), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def events_in(path: Path) -> int:
    """Events in an output file: a line each, but a readings batch or an incident's
    detection events count what they hold."""
    total = 0
    for line in path.read_bytes().splitlines():
        doc = orjson.loads(line)
        if path.name.endswith("readings.jsonl"):
            total += len(ReadingBatch.model_validate(doc))
        elif path.name.endswith("incidents.events.jsonl"):
            total += len(doc)
        else:
            total += 1
    return total


def records(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_mixed_input_gives_exactly_these_outputs(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    out = tmp_path / "out"
    output = dry_run(topology, events, out)

    # Events per file: readings and detection events travel in batch messages.
    files = {
        "aggregates.jsonl": 10,
        f"{P}deadletter.jsonl": 4,
        f"{P}incidents.audit.jsonl": 5,
        f"{P}incidents.city.jsonl": 5,
        f"{P}incidents.district.310101.jsonl": 4,
        f"{P}incidents.district.310104.jsonl": 1,
        f"{P}incidents.events.jsonl": 5,
        f"{P}incidents.street.310101002.jsonl": 4,
        f"{P}incidents.street.310104014.jsonl": 1,
        f"{P}readings.jsonl": 6,
        f"{P}reports.jsonl": 4,
    }
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "summary.json"])
    for name, count in files.items():
        assert events_in(out / name) == count, name

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["input_records"] == 13
    assert summary["dead_letters"] == {
        "duplicate": 1, "invalid_json": 1, "out_of_range": 1, "unknown_sensor": 1,
    }  # fmt: skip
    assert summary["incidents"] == {
        "total": 3,
        "by_severity": {"blue": 0, "yellow": 1, "orange": 1, "red": 1},
        "by_state": {"open": 2, "resolved": 1},
    }
    assert summary["aggregates"] == {
        "rows": 10, "by_level": {"district": 5, "street": 5}, "late_readings": 0,
    }  # fmt: skip
    # the latest event (the Open311 report at 00:10) + the widest area window (1m)
    assert summary["watermark"] == "2026-05-01T00:11:00+00:00"
    assert summary["topics"][f"{P}readings"] == 6
    assert "dead letters by reason" in output and "invalid_json" in output

    # dead letters: reason, the line they came from, the original bytes, the event clock
    letters = [DeadLetter.model_validate(r) for r in records(out / f"{P}deadletter.jsonl")]
    assert [(d.reason, d.offset, d.source_topic) for d in letters] == [
        ("invalid_json", 10, "events.jsonl"),
        ("unknown_sensor", 11, "events.jsonl"),
        ("out_of_range", 12, "events.jsonl"),
        ("duplicate", 13, "events.jsonl"),
    ]
    assert letters[0].original == b"not json {"
    assert {d.received_at.isoformat() for d in letters} == {"2026-05-01T00:10:00+00:00"}

    # incidents on the city topic: the cluster and the urgent report (reports leave the
    # normalizer one by one), then pm25 (its readings leave in the batch's readings
    # message) opens yellow, upgrades to orange, and clears at end of input (its reading
    # waited for the watermark)
    city = records(out / f"{P}incidents.city.jsonl")
    assert [(r["rule_id"], r["severity"], r["state"], r["last_action"]) for r in city] == [
        ("water_leak", "yellow", "open", "open"),
        ("gas_smell", "red", "open", "open"),
        ("pm25-high", "yellow", "open", "open"),
        ("pm25-high", "orange", "open", "upgrade"),
        ("pm25-high", "orange", "resolved", "auto_resolve"),
    ]
    ids = [str(r["incident_id"]) for r in city]
    assert all(re.fullmatch(r"inc-[0-9a-f]{16}", i) for i in ids)
    assert ids[2] == ids[3] == ids[4] and len(set(ids)) == 3
    cluster = city[0]
    assert cluster["evidence"]["event_ids"] == ["r-1", "r-2", "open311-r-3"]  # type: ignore[index]
    assert (cluster["owner_level"], cluster["owner_area"]) == ("street", "310101002")
    gas = records(out / f"{P}incidents.street.310104014.jsonl")
    assert [r["incident_id"] for r in gas] == [ids[1]]

    audit = [AuditEvent.model_validate(r) for r in records(out / f"{P}incidents.audit.jsonl")]
    assert [(a.incident_id, a.seq, a.action) for a in audit] == [
        (ids[0], 1, "open"), (ids[1], 1, "open"), (ids[2], 1, "open"),
        (ids[2], 2, "upgrade"), (ids[2], 3, "auto_resolve"),
    ]  # fmt: skip
    report = verify(audit)
    assert report.ok and report.incidents == 3 and report.events == 5

    reports = records(out / f"{P}reports.jsonl")
    assert reports[0]["description"] == "路面冒水 139****5678"  # masked on the way


def test_aggregate_rows_equal_a_hand_computation(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    out = tmp_path / "out"
    dry_run(topology, events, out)
    got = {
        (r["level"], r["area_code"], r["metric"], r["window_start"]): (
            r["count"], r["sum"], r["min"], r["max"], r["mean"], r["breaches"]
        )
        for r in records(out / "aggregates.jsonl")
    }  # fmt: skip
    t0, t1, t2 = "2026-05-01T00:00:00Z", "2026-05-01T00:01:00Z", "2026-05-01T00:02:00Z"
    # pm25 at aq-001: 80, 130 in minute 0 (both above 75: breaches), 160 in minute 1,
    # 50 in minute 2; pm10 100 in minute 0; aq-002 (Xuhui, Xujiahui street) 40 in minute 0
    huangpu = {
        ("pm25", t0): (2, 210.0, 80.0, 130.0, 105.0, 2),
        ("pm25", t1): (1, 160.0, 160.0, 160.0, 160.0, 1),
        ("pm25", t2): (1, 50.0, 50.0, 50.0, 50.0, 0),
        ("pm10", t0): (1, 100.0, 100.0, 100.0, 100.0, 0),
    }
    xuhui = {("pm25", t0): (1, 40.0, 40.0, 40.0, 40.0, 0)}
    expected = {}
    for (level, area), cells in {
        ("district", "310101"): huangpu, ("street", "310101002"): huangpu,
        ("district", "310104"): xuhui, ("street", "310104014"): xuhui,
    }.items():  # fmt: skip
        for (metric, start), value in cells.items():
            expected[(level, area, metric, start)] = value
    assert got == expected
    assert len(records(out / "aggregates.jsonl")) == len(expected)  # no row twice


def test_two_runs_write_identical_bytes(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    dry_run(topology, events, first)
    dry_run(topology, events, second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_rerun_into_the_same_directory_leaves_no_stale_topic_file(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    out = tmp_path / "out"
    dry_run(topology, events, out)
    assert (out / f"{P}incidents.street.310104014.jsonl").exists()
    _, fewer = world(tmp_path, LINES[:8])  # no gas report this time
    dry_run(topology, fewer, out)
    assert not (out / f"{P}incidents.street.310104014.jsonl").exists()
    assert len((out / f"{P}incidents.city.jsonl").read_bytes().splitlines()) == 4


def test_envelopes_route_raw_messages_and_handling_units_updates(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    units = Units(["310104014"])
    units.write(tmp_path)
    out = tmp_path / "out"
    dry_run(topology, events, out)
    gas_id = records(out / f"{P}incidents.street.310104014.jsonl")[0]["incident_id"]
    at = datetime(2026, 5, 1, 0, 3, 30, tzinfo=UTC)
    ack = update_value("u-1", gas_id, "acknowledge", "310104014", at)
    unknown = update_value("u-2", "inc-0000000000000000", "acknowledge", "310104014", at)
    unsigned = update_value("u-3", gas_id, "resolve", "310104014", at)

    def envelope(topic: str, value: bytes, signed: bool = True) -> dict[str, object]:
        headers = dict(units.signed(value, "310104014")[1]) if signed else {}
        return {"topic": topic, "key": gas_id, "value": value.decode(),
                "headers": {k: v.decode() for k, v in headers.items()}}  # fmt: skip

    lines: list[object] = [
        {"topic": f"{P}reports.raw", "key": "r-4", "value": LINES[8]},
        {"topic": f"{P}sensors.raw", "key": None, "value": json.dumps(LINES[0])},
        envelope(f"{P}incidents.updates", ack),
        envelope("incident_updates", unknown),
        envelope("incident_updates", unsigned, signed=False),
        envelope("incident_updates", ack),  # a replay
    ]
    _, enveloped = world(tmp_path, lines)
    with topology.open("a", encoding="utf-8") as text:
        text.write(f"incidents: {{unit_keys: {KEYS_FILE}}}\n")
    out2 = tmp_path / "out2"
    dry_run(topology, enveloped, out2)
    summary = json.loads((out2 / "summary.json").read_text(encoding="utf-8"))
    assert summary["dead_letters"] == {"duplicate": 1, "unknown_incident": 1, "unsigned": 1}
    assert summary["incidents"]["by_state"] == {"acknowledged": 1}
    assert summary["topics"][f"{P}readings"] == 1
    audit = records(out2 / f"{P}incidents.audit.jsonl")
    assert [(a["incident_id"], a["seq"], a["action"]) for a in audit] == [
        (gas_id, 1, "open"), (gas_id, 2, "acknowledge"),
    ]  # fmt: skip
    replies = records(out2 / f"{P}incidents.replies.jsonl")
    assert [(r["update_id"], r["accepted"], r["reason"]) for r in replies] == [
        ("u-1", True, None), ("u-2", False, "unknown_incident"),
        ("u-3", False, "unsigned"), ("u-1", False, "duplicate"),
    ]  # fmt: skip


def test_format_option_sets_the_header_the_normalizer_obeys(tmp_path: Path) -> None:
    topology, events = world(tmp_path, [LINES[0], LINES[3]])
    out = tmp_path / "out"
    dry_run(topology, events, out, "--format", "sensorthings")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # the canonical line is refused as SensorThings; the SensorThings line passes
    assert summary["topics"][f"{P}readings"] == 1
    assert sum(summary["dead_letters"].values()) == 1


def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    topology, events = world(tmp_path)
    out = str(tmp_path / "out")
    cases = [
        (["--input", str(tmp_path / "missing.jsonl")], "missing.jsonl does not exist"),
        (["--input", str(events), "--format", "xml"], "'xml' is not one of auto, canonical"),
        (["--input", str(tmp_path)], "is not a file"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["--topology", str(topology), "--out", out, *extra])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
        assert "Traceback" not in result.output
    _, bad = world(tmp_path, [{"topic": "cityops.other.sensors.raw", "value": {}}])
    result = runner.invoke(app, ["--topology", str(topology), "--input", str(bad), "--out", out])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "line 1: envelope topic 'cityops.other.sensors.raw' is not one of" in text
    result = runner.invoke(app, ["--topology", str(tmp_path / "nope.yaml"), "--input",
                                 str(events), "--out", out])  # fmt: skip
    assert result.exit_code == 2
