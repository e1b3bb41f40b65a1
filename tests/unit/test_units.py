"""Unit table: aliases, conversions, refusals."""

from __future__ import annotations

import pytest

from pipeline.units import (
    UnitError,
    canonical_unit_name,
    convert,
    dimension_of,
    same_dimension,
)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("GQ", "ug/m3"),
        ("µg/m³", "ug/m3"),
        ("ug/m3", "ug/m3"),
        ("GP", "mg/m3"),
        ("M1", "mg/l"),
        ("mg/L", "mg/l"),
        ("KMH", "km/h"),
        ("MTS", "m/s"),
        ("2N", "dB(A)"),
        ("dBA", "dB(A)"),
        ("CEL", "degC"),
        ("°C", "degC"),
        ("P1", "%"),
        ("KPA", "kPa"),
        ("kpa", "kPa"),
        ("MQH", "m3/h"),
        ("µS/cm", "uS/cm"),
    ],
)
def test_aliases_resolve_to_canonical_names(alias: str, canonical: str) -> None:
    assert canonical_unit_name(alias) == canonical


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (0.082, "mg/m3", "ug/m3", 82.0),
        (82.0, "GQ", "mg/m3", 0.082),
        (36.0, "km/h", "m/s", 10.0),
        (10.0, "MTS", "KMH", 36.0),
        (0.16, "MPa", "kPa", 160.0),
        (2.0, "bar", "kPa", 200.0),
        (10.0, "mH2O", "kPa", 98.0665),
        (3600.0, "l/h", "l/s", 1.0),
        (3.6, "m3/h", "l/s", 1.0),
        (300.0, "K", "degC", 26.85),
        (25.0, "degC", "K", 298.15),
        (50.0, "%", "1", 0.5),
        (500.0, "ug/l", "mg/l", 0.5),
        (2.0, "veh/min", "veh/h", 120.0),
        (150.0, "cm", "m", 1.5),
        (70.0, "dB", "dB(A)", 70.0),
    ],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == pytest.approx(expected)


def test_round_trip_is_identity() -> None:
    assert convert(convert(12.5, "degF", "K"), "K", "degF") == pytest.approx(12.5)


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(UnitError, match="unknown unit 'furlong'"):
        canonical_unit_name("furlong")
    with pytest.raises(UnitError, match="unknown unit"):
        convert(1.0, "ug/m3", "furlong")


def test_different_dimensions_are_refused() -> None:
    with pytest.raises(UnitError, match=r"cannot convert ug/m3 \(mass_concentration\) to km/h"):
        convert(1.0, "ug/m3", "km/h")
    assert not same_dimension("mg/l", "mg/m3")
    assert not same_dimension("pH", "1")


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(UnitError, match="finite"):
        convert(float("nan"), "mg/m3", "ug/m3")


def test_dimensions() -> None:
    assert dimension_of("GQ") == "mass_concentration"
    assert dimension_of("KPA") == "pressure"
    assert dimension_of("NTU") == "turbidity"
