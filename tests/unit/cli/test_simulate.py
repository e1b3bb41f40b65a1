"""`cityops simulate` in file mode (pipeline/cli/simulate.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli.simulate import simulate_command
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
