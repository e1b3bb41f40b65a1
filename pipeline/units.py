"""Known units of measurement and linear conversion between units of one dimension.

Why: sensors and adapters report the same quantity in different units (µg/m³ vs mg/m³,
km/h vs m/s, UN/CEFACT codes from FIWARE); the pipeline stores every value in the
metric's canonical unit, so conversion must be explicit, table-driven and refuse
anything it does not know (a wrong factor silently corrupts every aggregate).

Each unit converts to its dimension's base unit as ``base = value * factor + offset``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "UNITS",
    "Unit",
    "UnitError",
    "canonical_unit_name",
    "convert",
    "dimension_of",
    "is_known",
    "same_dimension",
    "unit",
]


class UnitError(ValueError):
    """A unit is unknown, or two units measure different dimensions."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: its canonical name, dimension and linear map to the dimension's base."""

    name: str
    dimension: str
    factor: float
    offset: float = 0.0


def _u(name: str, dimension: str, factor: float, offset: float = 0.0) -> Unit:
    return Unit(name=name, dimension=dimension, factor=factor, offset=offset)


# Canonical unit name -> Unit. The first unit of each dimension is its base (factor 1).
UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        # mass concentration in air (base µg/m³)
        _u("ug/m3", "mass_concentration", 1.0),
        _u("mg/m3", "mass_concentration", 1000.0),
        _u("ng/m3", "mass_concentration", 0.001),
        # aqueous concentration (base mg/l)
        _u("mg/l", "aqueous_concentration", 1.0),
        _u("ug/l", "aqueous_concentration", 0.001),
        _u("g/l", "aqueous_concentration", 1000.0),
        # speed (base m/s)
        _u("m/s", "speed", 1.0),
        _u("km/h", "speed", 1.0 / 3.6),
        # A-weighted sound level (base dB(A)); logarithmic, so only identity conversion
        _u("dB(A)", "sound_level", 1.0),
        # pressure (base kPa)
        _u("kPa", "pressure", 1.0),
        _u("Pa", "pressure", 0.001),
        _u("MPa", "pressure", 1000.0),
        _u("bar", "pressure", 100.0),
        _u("mH2O", "pressure", 9.80665),
        # volume flow (base l/s)
        _u("l/s", "flow", 1.0),
        _u("l/min", "flow", 1.0 / 60.0),
        _u("l/h", "flow", 1.0 / 3600.0),
        _u("m3/h", "flow", 1000.0 / 3600.0),
        _u("m3/s", "flow", 1000.0),
        # temperature (base °C)
        _u("degC", "temperature", 1.0),
        _u("K", "temperature", 1.0, -273.15),
        _u("degF", "temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
        # dimensionless ratios (base 1)
        _u("1", "dimensionless", 1.0),
        _u("%", "dimensionless", 0.01),
        # pH is dimensionless but on its own log scale: never convertible to a ratio
        _u("pH", "ph", 1.0),
        # turbidity
        _u("NTU", "turbidity", 1.0),
        # electrical conductivity (base µS/cm)
        _u("uS/cm", "conductivity", 1.0),
        _u("mS/cm", "conductivity", 1000.0),
        # traffic intensity (base vehicles per hour)
        _u("veh/h", "traffic_intensity", 1.0),
        _u("veh/min", "traffic_intensity", 60.0),
        # length (base m)
        _u("m", "length", 1.0),
        _u("cm", "length", 0.01),
        _u("mm", "length", 0.001),
        _u("km", "length", 1000.0),
    )
}

# Alias -> canonical name (exact spelling). UN/CEFACT common codes as used by FIWARE.
_ALIASES: dict[str, str] = {
    "µg/m3": "ug/m3",
    "µg/m³": "ug/m3",
    "μg/m³": "ug/m3",
    "ug/m³": "ug/m3",
    "GQ": "ug/m3",
    "mg/m³": "mg/m3",
    "GP": "mg/m3",
    "M1": "mg/l",
    "mg/L": "mg/l",
    "g/m3": "mg/l",
    "µg/l": "ug/l",
    "µg/L": "ug/l",
    "ug/L": "ug/l",
    "MTS": "m/s",
    "KMH": "km/h",
    "kmh": "km/h",
    "km/hr": "km/h",
    "dB": "dB(A)",
    "dBA": "dB(A)",
    "dB A": "dB(A)",
    "2N": "dB(A)",
    "KPA": "kPa",
    "PAL": "Pa",
    "MPA": "MPa",
    "BAR": "bar",
    "m H2O": "mH2O",
    "L/s": "l/s",
    "L/min": "l/min",
    "L/h": "l/h",
    "MQH": "m3/h",
    "m³/h": "m3/h",
    "MQS": "m3/s",
    "m³/s": "m3/s",
    "CEL": "degC",
    "°C": "degC",
    "℃": "degC",
    "C": "degC",
    "KEL": "K",
    "FAH": "degF",
    "°F": "degF",
    "C62": "1",
    "P1": "%",
    "percent": "%",
    "µS/cm": "uS/cm",
    "μS/cm": "uS/cm",
    "vehicles/h": "veh/h",
    "veh/hour": "veh/h",
    "vehicles/min": "veh/min",
    "MTR": "m",
    "CMT": "cm",
    "MMT": "mm",
    "KMT": "km",
}


def _fold(name: str) -> str:
    """A lenient spelling key: micro signs, superscripts and spaces normalised, case folded."""
    text = name.strip().replace("µ", "u").replace("μ", "u").replace("³", "3")
    return re.sub(r"\s+", "", text).casefold()


def _build_folded() -> dict[str, str]:
    """Case-insensitive lookup table; spellings that fold together ambiguously are dropped."""
    table: dict[str, str] = {}
    ambiguous: set[str] = set()
    for spelling, canonical in [*((n, n) for n in UNITS), *_ALIASES.items()]:
        key = _fold(spelling)
        if key in table and table[key] != canonical:
            ambiguous.add(key)
        table[key] = canonical
    for key in ambiguous:
        del table[key]
    return table


_FOLDED = _build_folded()


def canonical_unit_name(alias: str) -> str:
    """The canonical name of a unit given by any known spelling (``GQ`` -> ``ug/m3``).

    Raises :class:`UnitError` when the spelling is unknown.
    """
    if not isinstance(alias, str):
        msg = f"unit must be a string, not {type(alias).__name__}"
        raise UnitError(msg)
    if alias in UNITS:
        return alias
    exact = _ALIASES.get(alias) or _ALIASES.get(alias.strip())
    if exact is not None:
        return exact
    folded = _FOLDED.get(_fold(alias))
    if folded is not None:
        return folded
    msg = f"unknown unit {alias!r}"
    raise UnitError(msg)


def is_known(alias: str) -> bool:
    """Whether ``alias`` names a known unit."""
    try:
        canonical_unit_name(alias)
    except UnitError:
        return False
    return True


def unit(alias: str) -> Unit:
    """The :class:`Unit` a spelling names."""
    return UNITS[canonical_unit_name(alias)]


def dimension_of(alias: str) -> str:
    """The dimension (e.g. ``mass_concentration``) of a unit."""
    return unit(alias).dimension


def same_dimension(a: str, b: str) -> bool:
    """Whether two known units measure the same dimension."""
    return unit(a).dimension == unit(b).dimension


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from one unit to another of the same dimension.

    Raises :class:`UnitError` when a unit is unknown, the dimensions differ, or the
    value is not finite.
    """
    source = unit(from_unit)
    target = unit(to_unit)
    if source.dimension != target.dimension:
        msg = (
            f"cannot convert {source.name} ({source.dimension}) "
            f"to {target.name} ({target.dimension})"
        )
        raise UnitError(msg)
    number = float(value)
    if not math.isfinite(number):
        msg = f"value {value!r} is not a finite number"
        raise UnitError(msg)
    if source.name == target.name:
        return number
    base = number * source.factor + source.offset
    return (base - target.offset) / target.factor
