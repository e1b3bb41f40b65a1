"""`cityops simulate` in file mode (pipeline/cli/simulate.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli.simulate import nothing_to_catch_up, simulate_command, time_phases
from pipeline.ingest.normalize import Normalizer
from pipeline.topology import load_topology
from tests.support.paths import TOPOLOGIES


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


def test_open311_on_a_topology_without_boundaries_still_produces_placed_reports(
    tmp_path: Path,
) -> None:
    """Without boundaries a simulated report has no coordinates, only its area, and Open311
    carries no area: the reports stay canonical (which places them) rather than vanish or
    land at city level (issue 15)."""
    demo = load_topology(TOPOLOGIES / "demo.yaml")
    assert demo.boundary_features() == []
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(_app(), [
        "simulate", "-t", str(TOPOLOGIES / "demo.yaml"), "--formats", "open311",
        "--rate", "200", "--duration", "5s", "--speedup", "60", "--seed", "2",
        "--reports-per-minute", "30", "--start", "2026-11-25T08:00:00+08:00",
        "--output", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    raw = [r["value"] for r in lines if r["topic"] == demo.topics.name("raw_reports")]
    assert len(raw) >= 20  # 30 a simulated minute, 5 simulated minutes
    normalizer = Normalizer(demo)
    for doc in raw:
        normalized = normalizer.normalize(orjson.dumps(doc))
        assert normalized.rejections == [], doc
        (report,) = normalized.reports
        assert report.areas.district is not None  # placed, not the city's


def test_time_phases_catch_up_with_the_clock_then_run_at_real_time() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    begin = now - timedelta(minutes=9)
    # at 10x, 9 minutes behind are made up in 60 wall seconds: the clock is then at 12:01
    meet = now + timedelta(minutes=1)
    assert time_phases(begin, None, 10.0, catch_up=True, now=now) == [
        (begin, 10.0, meet),
        (meet, 1.0, None),
    ]
    assert time_phases(begin, timedelta(minutes=5), 10.0, catch_up=True, now=now) == [
        (begin, 10.0, meet),
        (meet, 1.0, meet + timedelta(minutes=4)),
    ]
    # a run that ends before it meets the clock, no catch-up asked, a start not in the
    # past, or no speedup: one stretch, as without the option
    short = time_phases(begin, timedelta(seconds=30), 10.0, catch_up=True, now=now)
    assert short == [(begin, 10.0, begin + timedelta(minutes=5))]
    assert time_phases(begin, None, 10.0, catch_up=False, now=now) == [(begin, 10.0, None)]
    assert time_phases(now, None, 10.0, catch_up=True, now=now) == [(now, 10.0, None)]
    assert time_phases(begin, None, 1.0, catch_up=True, now=now) == [(begin, 1.0, None)]


def test_catch_up_says_when_there_is_nothing_to_catch_up(tmp_path: Path) -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert nothing_to_catch_up(now - timedelta(minutes=9), 10.0, now) is None
    ahead = nothing_to_catch_up(now, 10.0, now)
    assert ahead is not None and "nothing to catch up" in ahead and "clock_skew" in ahead
    real_time = nothing_to_catch_up(now + timedelta(minutes=1), 1.0, now)
    assert real_time is not None and "clock_skew" not in real_time
    slow = nothing_to_catch_up(now - timedelta(minutes=9), 1.0, now)
    assert slow is not None and "never meets the clock" in slow
    args = [
        "simulate", "--topology", str(TOPOLOGIES / "demo.yaml"), "--duration", "1s",
        "--speedup", "10", "--fault-rate", "0", "--reports-per-minute", "0",
    ]  # fmt: skip
    out = tmp_path / "out.jsonl"
    started_now = CliRunner().invoke(_app(), [*args, "--catch-up", "--output", str(out)])
    assert started_now.exit_code == 0, started_now.output
    assert "warning: --catch-up" in started_now.stderr
    assert "nothing to catch up" in started_now.stderr
    quiet = CliRunner().invoke(_app(), [*args, "--output", str(out)])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_catch_up_keeps_the_stream_behind_the_wall_clock(tmp_path: Path) -> None:
    """Written to a file, a run of 30 s from 90 s ago at 10x: without --catch-up it ends
    3.5 simulated minutes ahead of the clock (a live topic dead-letters such readings as
    clock_skew); with it, it meets the clock after 10 s and ends where the clock will be."""
    now = datetime.now(UTC)
    begin = (now - timedelta(seconds=90)).isoformat()
    args = [
        "simulate", "--topology", str(TOPOLOGIES / "demo.yaml"), "--rate", "400",
        "--duration", "30s", "--seed", "5", "--start", begin, "--speedup", "10",
        "--fault-rate", "0", "--reports-per-minute", "0",
    ]  # fmt: skip
    newest = {}
    for mode in ("--no-catch-up", "--catch-up"):
        out = tmp_path / f"{mode}.jsonl"
        result = CliRunner().invoke(_app(), [*args, mode, "--output", str(out)])
        assert result.exit_code == 0, result.output
        readings = [orjson.loads(line)["value"] for line in out.read_bytes().splitlines()]
        times = [datetime.fromisoformat(r["observed_at"]) for r in readings]
        assert times == sorted(times)
        assert len({r["event_id"] for r in readings}) == len(readings)
        newest[mode] = max(times)
        assert 11_900 <= len(readings) <= 12_050  # 400/s for 30 s (one partial round more)
    assert newest["--no-catch-up"] - now > timedelta(minutes=3)
    assert abs(newest["--catch-up"] - (now + timedelta(seconds=30))) < timedelta(seconds=5)
