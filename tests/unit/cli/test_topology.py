"""`cityops topology validate|show` through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from typer.testing import CliRunner

from pipeline.cli.topology import topology_app
from pipeline.kafka.producer import key_partition
from tests.support.paths import TOPOLOGIES

runner = CliRunner()


def test_validate_ok() -> None:
    result = runner.invoke(topology_app, ["validate", str(TOPOLOGIES / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK demo: 1 city, 2 districts, 5 streets; 6 sensors;")


def test_validate_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    text = (TOPOLOGIES / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("threshold: 150}", "threshold: 100}").replace("clear: 60", "clear: 90")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = runner.invoke(topology_app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "invalid topology (2 errors)" in result.output
    assert "rules[0].levels[2].threshold: must be greater than 115 (the yellow level)" in (
        result.output
    )
    assert "rules[0].clear: must be below 75 (the blue threshold)" in result.output
    assert "Traceback" not in result.output


def test_validate_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: demo\nareas: [\n", encoding="utf-8")
    result = runner.invoke(topology_app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "line 3, column 1: invalid YAML" in result.output
    result = runner.invoke(topology_app, ["validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "No such file or directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_show_summarises_shanghai() -> None:
    result = runner.invoke(
        topology_app, ["show", str(TOPOLOGIES / "shanghai.yaml")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "16 districts, 215 streets, 6395 communities;" in out
    assert "grid h3 resolution 9 (99,631 cells); 400 sensors" in out
    assert "310115 Pudong" in out
    assert "blue:75 yellow:115 orange:150 red:250" in out
    assert "gas_smell" in out and "at once (urgent)" in out
    assert "cityops.shanghai.sensors.raw" in out
    assert "231 boundary polygons, of which SYNTHETIC stand-ins: 215 street" in out


def test_validate_warns_when_located_reports_cannot_be_placed() -> None:
    demo = str(TOPOLOGIES / "demo.yaml")  # report categories, no boundaries
    result = runner.invoke(topology_app, ["validate", "-t", demo])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK demo:")
    assert "warning: boundaries: none: a located report" in result.stderr
    result = runner.invoke(topology_app, ["validate", "-t", demo, "--json"])
    assert result.exit_code == 0
    [warning] = json.loads(result.stdout)["warnings"]
    assert warning["path"] == "boundaries" and "placed at city level" in warning["message"]
    shanghai = str(TOPOLOGIES / "shanghai.yaml")
    result = runner.invoke(topology_app, ["validate", "-t", shanghai, "--json"])
    assert json.loads(result.stdout)["warnings"] == []
    assert "warning" not in runner.invoke(topology_app, ["validate", "-t", shanghai]).stderr


def test_show_tells_what_a_report_s_own_urgent_flag_does() -> None:
    result = runner.invoke(topology_app, ["show", "-t", str(TOPOLOGIES / "demo.yaml"), "--json"])
    rows = {
        row["category"]: row for row in json.loads(result.stdout)["tables"]["Report categories"]
    }
    assert rows["gas_smell"]["opens"] == "at once (urgent)"
    assert rows["water_leak"]["opens"].endswith("; a report flagged urgent: at once")


def test_show_gives_each_district_its_readings_partition_and_each_partition_its_load() -> None:
    """The partition is where the pipeline's producer sends the district's readings (Kafka's
    default partitioner, checked against aiokafka's), and a partition's load is the
    sensors of its districts: what decides how evenly workers share the analysis."""
    result = runner.invoke(topology_app, ["show", str(TOPOLOGIES / "shanghai.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["tables"]["Sensors per district (400)"]
    partitions = 6
    default = DefaultPartitioner()
    load = [0] * partitions
    for row in rows:
        code = row["district"].split()[0].encode()
        expected = default(code, list(range(partitions)), list(range(partitions)))
        assert int(row["partition"]) == expected == key_partition(code, partitions), row
        load[expected] += int(row["sensors"])
    assert sum(load) == 400
    assert load == [50, 50, 50, 75, 100, 75]  # the sample's 16 districts of 25 sensors
    shown = runner.invoke(topology_app, ["show", str(TOPOLOGIES / "shanghai.yaml")])
    assert "sensors per readings partition (0-5): 50 / 50 / 50 / 75 / 100 / 75" in shown.output
