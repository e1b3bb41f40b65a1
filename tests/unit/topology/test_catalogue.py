"""The metrics section: canonical units, accepted units, ranges."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.topology.demo_edits import errors_after, valid_after


def test_metric_units_are_canonical_and_include_the_unit() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"] = {"unit": "GQ", "accepted_units": ["GP"], "range": [0, 1000]}

    metric = valid_after(mutate).metrics["pm25"]
    assert metric.unit == "ug/m3"
    assert metric.accepted_units == ("ug/m3", "mg/m3")
    assert metric.to_canonical(0.1, "mg/m3") == pytest.approx(100.0)
    assert not metric.accepts("km/h")


def test_unknown_units_and_dimension_mismatch() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"]["unit"] = "furlong"
        d["metrics"]["pm10"]["accepted_units"] = ["ug/m3", "km/h", "parsec"]

    assert errors_after(mutate) == [
        ("metrics.pm25.unit", "unknown unit 'furlong' (see docs/topology.md for known units)"),
        ("metrics.pm10.accepted_units[1]", "km/h cannot be converted to ug/m3"),
        ("metrics.pm10.accepted_units[2]", "unknown unit 'parsec'"),
    ]


def test_range_must_ascend() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"]["range"] = [10, 10]

    assert errors_after(mutate) == [("metrics.pm25.range", "min 10 must be less than max 10")]
