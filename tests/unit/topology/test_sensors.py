"""The sensors and datastreams sections, inline and from a registry file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline.topology import (
    TopologyError,
    parse_topology,
)
from tests.unit.topology.demo_edits import BASE, errors_after, valid_after


def test_sensor_area_and_metrics_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][0]["area"] = "310101999"
        d["sensors"][1]["metrics"] = ["pm25", "pm1"]

    assert errors_after(mutate) == [
        ("sensors[0].area", "unknown area '310101999'"),
        ("sensors[1].metrics[1]", "unknown metric 'pm1' (not in metrics)"),
    ]


def test_duplicate_sensor_and_repeated_metric() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][1]["id"] = "aq-001"
        d["sensors"][2]["metrics"] = ["noise_laeq", "noise_laeq"]

    assert errors_after(mutate) == [
        ("sensors[2].metrics[1]", "'noise_laeq' is listed twice"),
        ("sensors[1].id", "duplicate sensor id 'aq-001'"),
        ("datastreams.2.sensor", "unknown sensor 'aq-002'"),
    ]


def test_sensor_coordinates_are_range_checked() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][0]["lat"] = 91

    assert errors_after(mutate) == [("sensors[0].lat", "must be less than or equal to 90")]


def test_datastreams_reference_known_sensors_and_their_metrics() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["datastreams"]["7"] = {"sensor": "ghost", "metric": "pm25"}
        d["datastreams"]["8"] = {"sensor": "noise-001", "metric": "pm25"}
        d["datastreams"]["9"] = {"sensor": "aq-001", "metric": "nox"}

    assert errors_after(mutate) == [
        ("datastreams.7.sensor", "unknown sensor 'ghost'"),
        ("datastreams.8.metric", "sensor noise-001 does not measure pm25"),
        ("datastreams.9.metric", "unknown metric 'nox'"),
    ]


def test_integer_datastream_ids_are_accepted() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["datastreams"] = {42: {"sensor": "aq-001", "metric": "pm25"}}

    assert set(valid_after(mutate).datastreams) == {"42"}


def test_sensor_registry_file_csv(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(
        "id,kind,metrics,lat,lon,area\n"
        "a-1,air,pm25 pm10,31.2,121.4,310101002\n"
        "a-2,air,pm25,95,121.4,310101\n",
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["sensors"] = {"file": "s.csv"}
    del data["datastreams"]
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors == [("sensors.file[1].lat", "must be less than or equal to 90")]
    (tmp_path / "s.csv").write_text(
        "id,kind,metrics,lat,lon,area\na-1,air,pm25 pm10,31.2,121.4,310101002\n", encoding="utf-8"
    )
    topo = parse_topology(data, tmp_path)
    sensor = topo.sensor("a-1")
    assert sensor is not None and sensor.metrics == ("pm25", "pm10") and sensor.kind == "air"


def test_sensor_registry_file_missing(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["sensors"] = {"file": "nope.csv"}
    del data["datastreams"]
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    [(path, message)] = caught.value.errors
    assert path == "sensors.file" and message.startswith("cannot read")
