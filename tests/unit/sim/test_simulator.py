"""The city simulator: deterministic, complete, realistic in shape, and accepted by the pipeline."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli.simulate import simulate_command
from pipeline.ingest.normalize import Normalizer
from pipeline.ingest.pii import find_personal_data, is_valid_resident_id
from pipeline.kafka.producer import TokenBucket, chunk_size
from pipeline.models import AreaLevel
from pipeline.rules.clusters import haversine_m
from pipeline.sim.simulator import FAULT_KINDS, SimEvent, Simulator, resident_id_check
from pipeline.topology import Topology, load_topology
from tests.support.paths import TOPOLOGIES

# 00:00 in Shanghai (UTC+8): a whole local day from here.
MIDNIGHT_LOCAL = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
TEN_AM_LOCAL = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> Topology:
    return load_topology(TOPOLOGIES / "demo.yaml")


@pytest.fixture(scope="module")
def shanghai() -> Topology:
    return load_topology(TOPOLOGIES / "shanghai.yaml")


def _subset(topology: Topology, kind: str, count: int) -> Topology:
    """The topology with only the first ``count`` sensors of one kind (keeps tests small)."""
    sensors = tuple(s for s in topology.sensors if s.kind == kind)[:count]
    return topology.model_copy(update={"sensors": sensors})


def _docs(events: list[SimEvent]) -> list[dict[str, Any]]:
    return [orjson.loads(e.value) for e in events if e.fault is None]


def _readings(events: list[SimEvent], topic: str) -> list[dict[str, Any]]:
    return [
        d
        for e, d in ((e, orjson.loads(e.value)) for e in events if e.fault is None)
        if e.topic == topic and "sensor_id" in d
    ]


def _at(doc: dict[str, Any], field: str = "observed_at") -> datetime:
    return datetime.fromisoformat(doc[field])


def _local_hour(doc: dict[str, Any]) -> int:
    return (_at(doc) + timedelta(hours=8)).hour  # Asia/Shanghai, no DST


# ---------------------------------------------------------------- determinism and coverage


def _stream(topology: Topology, seed: int, n: int = 3000) -> list[SimEvent]:
    sim = Simulator(
        topology,
        seed=seed,
        start=TEN_AM_LOCAL,
        interval=timedelta(seconds=20),
        fault_rate=0.02,
        reports_per_minute=6,
        episodes_per_hour=4,
    )
    return list(itertools.islice(sim.events(), n))


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(demo: Topology) -> None:
    first, again, other = _stream(demo, 7), _stream(demo, 7), _stream(demo, 8)
    assert [e.value for e in first] == [e.value for e in again]
    assert [e.key for e in first] == [e.key for e in again]
    values = [
        (orjson.loads(a.value).get("value"), orjson.loads(b.value).get("value"))
        for a, b in zip(first, other, strict=True)
        if a.fault is None and b.fault is None
    ]
    assert sum(x != y for x, y in values) > 0.8 * len(values)


def test_every_sensor_reports_every_registered_metric_each_round(shanghai: Topology) -> None:
    sim = Simulator(shanghai, seed=1, start=TEN_AM_LOCAL, reports_per_minute=0, episodes_per_hour=0)
    assert sim.readings_per_round == sum(len(s.metrics) for s in shanghai.sensors) == 1296
    first_round = list(itertools.islice(sim.events(), 2 * sim.readings_per_round))
    seen = Counter((d["sensor_id"], d["metric"]) for d in _docs(first_round))
    expected = {(s.id, m) for s in shanghai.sensors for m in s.metrics}
    assert set(seen) == expected
    assert set(seen.values()) == {2}
    assert {e.topic for e in first_round} == {"cityops.shanghai.sensors.raw"}
    assert all(e.key == orjson.loads(e.value)["sensor_id"].encode() for e in first_round)


def test_readings_are_canonical_in_range_and_time_ordered(demo: Topology) -> None:
    sim = Simulator(
        demo,
        seed=3,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=0,
        include_location=True,
    )
    events = list(itertools.islice(sim.events(), 800))
    docs = _docs(events)
    assert list(docs[0]) == [
        "event_id",
        "sensor_id",
        "metric",
        "value",
        "unit",
        "observed_at",
        "lat",
        "lon",
    ]
    assert docs[0]["observed_at"] == "2026-11-25T02:00:00.000000Z"
    for doc in docs:
        metric = demo.metrics[doc["metric"]]
        sensor = demo.sensor(doc["sensor_id"])
        assert sensor is not None and doc["metric"] in sensor.metrics
        assert doc["unit"] == metric.unit
        assert metric.range[0] <= doc["value"] <= metric.range[1]
        assert (doc["lat"], doc["lon"]) == (sensor.lat, sensor.lon)
    times = [e.at_us for e in events]
    assert times == sorted(times)
    assert len({d["event_id"] for d in docs}) == len(docs)
    # 8 readings a round, a round a minute: 100 rounds span 99 minutes.
    assert _at(docs[-1]) - _at(docs[0]) >= timedelta(minutes=99)


def test_for_rate_spreads_a_round_over_rate_and_speedup(demo: Topology) -> None:
    sim = Simulator.for_rate(demo, rate=80, speedup=60, start=TEN_AM_LOCAL)
    # 8 readings at 80/s take 0.1 s of wall time = 6 s simulated at speedup 60.
    assert sim.interval == timedelta(seconds=6)


# ---------------------------------------------------------------- realistic shapes


def test_rush_hour_speeds_are_lower_than_night(shanghai: Topology) -> None:
    topology = _subset(shanghai, "traffic", 8)
    sim = Simulator(
        topology,
        seed=5,
        start=MIDNIGHT_LOCAL,
        interval=timedelta(minutes=10),
        reports_per_minute=0,
        episodes_per_hour=0,
    )
    docs = _docs(list(sim.events(until=MIDNIGHT_LOCAL + timedelta(days=1))))
    by_hour: dict[int, list[float]] = {}
    for doc in docs:
        if doc["metric"] == "traffic_speed":
            by_hour.setdefault(_local_hour(doc), []).append(doc["value"])
    night = statistics.mean(v for h in (0, 1, 2, 3, 4) for v in by_hour[h])
    rush = statistics.mean(v for h in (7, 8, 17, 18) for v in by_hour[h])
    midday = statistics.mean(v for h in (11, 12, 13, 14) for v in by_hour[h])
    assert night > 45
    assert rush < 0.6 * night
    assert rush < midday < night
    intensity = [d for d in docs if d["metric"] == "traffic_intensity"]
    night_cars = statistics.mean(d["value"] for d in intensity if _local_hour(d) in (1, 2, 3))
    rush_cars = statistics.mean(d["value"] for d in intensity if _local_hour(d) == 8)
    assert rush_cars > 4 * night_cars


def _district_means(
    docs: list[dict[str, Any]],
    topology: Topology,
    metric: str,
    start: datetime,
    begin: timedelta,
    end: timedelta,
) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for doc in docs:
        if doc.get("metric") != metric or not begin <= _at(doc) - start < end:
            continue
        sensor = topology.sensor(doc["sensor_id"])
        assert sensor is not None
        district = topology.admin_codes(sensor.area)[AreaLevel.district]
        values.setdefault(district, []).append(doc["value"])
    return {d: statistics.mean(v) for d, v in values.items()}


def test_a_pollution_episode_rises_in_its_district_then_drifts_to_the_neighbour(
    demo: Topology,
) -> None:
    sim = Simulator(
        demo,
        seed=11,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=0,
        episodes_per_hour=0,
    )
    assert [code for code, _ in sim.neighbours("310101")] == ["310104"]
    episode = sim.episode(
        district="310101",
        metric="pm25",
        start=TEN_AM_LOCAL + timedelta(minutes=10),
        duration=timedelta(minutes=60),
        peak=200,
    )
    ((neighbour, lag, factor),) = episode.spread
    assert neighbour == "310104" and factor == 0.7
    assert timedelta(minutes=15) < lag < timedelta(minutes=25)  # ~6.7 km at 20 km/h
    docs = _docs(list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=2))))

    def means(begin: int, end: int) -> dict[str, float]:
        return _district_means(
            docs, demo, "pm25", TEN_AM_LOCAL, timedelta(minutes=begin), timedelta(minutes=end)
        )

    before, early, late = means(0, 10), means(25, 30), means(50, 60)
    assert early["310101"] > before["310101"] + 150  # plateau in its own district
    assert abs(early["310104"] - before["310104"]) < 30  # not arrived at the neighbour yet
    assert late["310104"] > before["310104"] + 100  # drifted there (0.7 * 200)
    after = means(110, 120)
    assert abs(after["310101"] - before["310101"]) < 30


def test_an_episode_without_spread_stays_local(demo: Topology) -> None:
    sim = Simulator(demo, seed=11, start=TEN_AM_LOCAL, reports_per_minute=0, episodes_per_hour=0)
    episode = sim.episode(district="310101", metric="pm25", spread=False)
    assert episode.spread == ()
    with pytest.raises(ValueError, match="no sensors"):
        sim.episode(district="999999")
    with pytest.raises(ValueError, match="not in topology"):
        sim.episode(district="310101", metric="radon")


def test_a_pressure_drop_lowers_pressure_and_brings_leak_reports_near_the_burst(
    shanghai: Topology,
) -> None:
    topology = _subset(shanghai, "water_supply", 80)
    sim = Simulator(
        topology,
        seed=21,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=1),
        reports_per_minute=4,
        episodes_per_hour=0,
    )
    start = TEN_AM_LOCAL + timedelta(minutes=30)
    drop = sim.pressure_drop(district="310104", start=start, duration=timedelta(minutes=60))
    assert drop.category == "water_leak" and drop.hotspot is not None
    events = list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=2)))
    docs = _docs(events)
    during = _district_means(
        docs, topology, "water_pressure", TEN_AM_LOCAL, timedelta(minutes=45), timedelta(minutes=75)
    )
    before = _district_means(
        docs, topology, "water_pressure", TEN_AM_LOCAL, timedelta(0), timedelta(minutes=30)
    )
    assert during["310104"] < 180 < 250 < before["310104"]
    assert abs(during["310105"] - before["310105"]) < 20  # other districts unaffected

    reports = [d for d in docs if "report_id" in d]
    near = [
        r for r in reports if "lat" in r and haversine_m(r["lat"], r["lon"], *drop.hotspot) < 400
    ]
    in_episode = [r for r in reports if start <= _at(r, "reported_at") < start + drop.duration]
    near_in_episode = [r for r in near if r in in_episode]
    assert len(in_episode) > 150  # 4 a minute for an hour
    assert len(near_in_episode) >= 0.5 * len(in_episode)
    assert {r["category"] for r in near_in_episode} <= {"water_leak", "flooding"}
    assert Counter(r["category"] for r in near_in_episode).most_common(1)[0][0] == "water_leak"
    outside = [r for r in near if r not in in_episode]
    assert len(outside) <= 3  # background reports rarely land there by chance


def test_noise_complaints_gather_at_a_noisy_site(shanghai: Topology) -> None:
    topology = _subset(shanghai, "noise", 80)
    sim = Simulator(
        topology,
        seed=4,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=2),
        reports_per_minute=2,
        episodes_per_hour=0,
    )
    site = sim.sensors_in("310110", "noise_laeq")[0]
    episode = sim.episode(
        district="310110",
        metric="noise_laeq",
        sensors=[site],
        start=TEN_AM_LOCAL + timedelta(minutes=30),
        duration=timedelta(minutes=60),
        peak=20,
    )
    assert episode.category == "noise_complaint"
    docs = _docs(list(sim.events(until=TEN_AM_LOCAL + timedelta(minutes=90))))

    def site_level(begin: int, end: int, sensor: str = site) -> float:
        return statistics.mean(
            d["value"]
            for d in docs
            if d.get("sensor_id") == sensor
            and timedelta(minutes=begin) <= _at(d) - TEN_AM_LOCAL < timedelta(minutes=end)
        )

    assert site_level(45, 75) > site_level(0, 30) + 15
    neighbour = sim.sensors_in("310110", "noise_laeq")[1]
    assert abs(site_level(45, 75, neighbour) - site_level(0, 30, neighbour)) < 5
    complaints = [
        d
        for d in docs
        if d.get("category") == "noise_complaint"
        and episode.start <= _at(d, "reported_at") < episode.start + episode.duration
    ]
    assert episode.hotspot is not None
    close = [c for c in complaints if haversine_m(c["lat"], c["lon"], *episode.hotspot) < 400]
    assert len(close) >= 30 and len(close) >= 0.8 * len(complaints)


# ---------------------------------------------------------------- faults and reports


def test_fault_rate_is_respected_and_every_fault_is_rejected(shanghai: Topology) -> None:
    topology = _subset(shanghai, "air", 40)
    sim = Simulator(
        topology,
        seed=9,
        start=TEN_AM_LOCAL,
        fault_rate=0.05,
        reports_per_minute=0,
        include_location=True,
    )
    events = list(itertools.islice(sim.events(), 12_000))
    faults = Counter(e.fault for e in events if e.fault)
    assert 0.04 < sum(faults.values()) / len(events) < 0.06
    assert set(faults) == set(FAULT_KINDS)
    assert faults == sim.faults
    normalizer = Normalizer(topology)
    for event in events:
        result = normalizer.normalize(event.value)
        if event.fault:
            assert result.rejections and not result.events, (event.fault, event.value)
        else:
            assert len(result.readings) == 1 and not result.rejections, event.value


def test_no_faults_at_rate_zero(demo: Topology) -> None:
    events = list(itertools.islice(Simulator(demo, seed=1, start=TEN_AM_LOCAL).events(), 2000))
    assert not any(e.fault for e in events)


def test_reports_are_valid_chinese_some_urgent_some_with_personal_data(
    shanghai: Topology,
) -> None:
    topology = _subset(shanghai, "water_supply", 80)
    sim = Simulator(
        topology,
        seed=13,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=10),
        reports_per_minute=10,
        episodes_per_hour=2,
    )
    events = list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=8)))
    reports = [e for e in events if e.topic == "cityops.shanghai.reports.raw"]
    assert len(reports) > 3000
    docs = [orjson.loads(e.value) for e in reports]
    assert all(e.key == d["report_id"].encode() for e, d in zip(reports, docs, strict=True))
    assert len({d["report_id"] for d in docs}) == len(docs)
    assert {d["category"] for d in docs} == {c.id for c in topology.report_categories}
    assert 0.05 < sum(d["urgent"] for d in docs) / len(docs) < 0.3
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in d["description"]) for d in docs)
    found = Counter(p.kind for d in docs for p in find_personal_data(d["description"]))
    assert found["mobile"] > 0.15 * len(docs)
    assert found["landline"] > 0.02 * len(docs)
    assert found["id"] > 0.02 * len(docs) and found["id_like"] == 0
    normalizer = Normalizer(topology)
    for event in reports:
        result = normalizer.normalize(event.value)
        assert len(result.reports) == 1 and not result.rejections, event.value
        assert "****" in result.reports[0].description or not find_personal_data(
            orjson.loads(event.value)["description"]
        )


def test_fake_id_numbers_carry_a_valid_checksum() -> None:
    assert resident_id_check("11010519491231002") == "X"  # the GB 11643 worked example
    assert is_valid_resident_id("11010519491231002X")


def test_a_topology_without_boundaries_names_the_area_instead_of_a_point(demo: Topology) -> None:
    sim = Simulator(demo, seed=2, start=TEN_AM_LOCAL, reports_per_minute=30)
    docs = [d for d in _docs(list(itertools.islice(sim.events(), 400))) if "report_id" in d]
    assert docs and all("lat" not in d and demo.has_area(d["area"]) for d in docs)
    normalizer = Normalizer(demo)
    assert all(len(normalizer.normalize(orjson.dumps(d)).reports) == 1 for d in docs)


# ---------------------------------------------------------------- producer pacing (pure)


def test_token_bucket_paces_to_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(100.0, burst=10.0, clock=lambda: now[0])
    assert bucket.reserve(10) == pytest.approx(0.1)  # empty at start: 10 tokens = 0.1 s
    now[0] = 0.1
    assert bucket.reserve(10) == pytest.approx(0.1)
    now[0] = 5.0  # a long pause saves up only `burst` tokens
    assert bucket.reserve(10) == 0.0
    assert bucket.reserve(50) == pytest.approx(0.5)
    assert chunk_size(200) == 4 and chunk_size(1e7) == 2000 and chunk_size(None) == 2000


# ---------------------------------------------------------------- the command (file mode)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("simulate")(simulate_command)
    app.command("noop")(lambda: None)
    return app


def test_simulate_to_a_file_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "simulate",
        "--topology",
        str(TOPOLOGIES / "demo.yaml"),
        "--rate",
        "400",
        "--duration",
        "30s",
        "--seed",
        "5",
        "--start",
        "2026-11-25T08:00:00+08:00",
        "--speedup",
        "10",
        "--fault-rate",
        "0.05",
        "--reports-per-minute",
        "20",
    ]
    outputs = []
    for name in ("a.jsonl", "b.jsonl"):
        result = runner.invoke(_app(), [*args, "--output", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    lines = [orjson.loads(line) for line in outputs[0].splitlines()]
    readings = [r for r in lines if r["topic"] == "cityops.demo.sensors.raw"]
    assert 11_900 <= len(readings) <= 12_000  # 400/s for 30 s
    assert all(set(r) <= {"topic", "key", "value", "value_text", "fault"} for r in lines)
    assert any(r["topic"] == "cityops.demo.reports.raw" for r in lines)
    broken = [r for r in lines if r.get("fault") == "broken_json"]
    assert broken and all("value_text" in r and "value" not in r for r in broken)
    first = readings[0]["value"]
    assert first["observed_at"] == "2026-11-25T00:00:00.000000Z"
    last = max(r["value"]["observed_at"] for r in readings if "fault" not in r)
    assert "2026-11-25T00:04:5" in last  # 30 s of wall time = 5 simulated minutes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "0"], "--rate must be positive"),
        (["--duration", "soon"], "--duration"),
        (["--fault-rate", "1.5"], "--fault-rate"),
        (["--start", "2026-11-25T08:00:00"], "UTC offset"),
        (["--output", "x.jsonl", "--duration", "forever"], "finite --duration"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = [
        "simulate",
        "--topology",
        str(TOPOLOGIES / "demo.yaml"),
        "--duration",
        "1s",
        "--output",
        str(tmp_path / "o.jsonl"),
        *extra,
    ]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_topology_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Not Valid\n", encoding="utf-8")
    result = CliRunner().invoke(
        _app(),
        ["simulate", "-t", str(bad), "--duration", "1s", "--output", str(tmp_path / "o.jsonl")],
    )
    assert result.exit_code == 2
