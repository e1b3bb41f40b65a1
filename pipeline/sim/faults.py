"""Faults: the nonsense broken sensors and gateways send, in place of good readings.

Why: the dead-letter path needs work that looks like the real thing. A ``fault_rate``
share of readings is replaced by one of :data:`FAULT_KINDS`: wrong types, negative or
absurd values, broken JSON, unknown sensors, bad units or bad times. Every one of them
must be rejected by normalization (the unit tests check that).
"""

from __future__ import annotations

import random

import orjson

__all__ = ["FAULT_KINDS", "inject_fault"]

FAULT_KINDS: tuple[str, ...] = (
    "wrong_type",
    "negative",
    "absurd",
    "broken_json",
    "unknown_sensor",
    "bad_unit",
    "bad_time",
)


def inject_fault(
    rng: random.Random, doc: dict[str, object], key: bytes, *, lo: float, hi: float
) -> tuple[str, bytes, bytes]:
    """Spoil a canonical reading (``doc`` is changed): ``(kind, key, payload)``.

    ``lo`` and ``hi`` are the metric's range: a negative value is only nonsense where the
    range has no negatives (else the fault becomes an absurd value).
    """
    kind = rng.choice(FAULT_KINDS)
    if kind == "negative" and lo < 0:
        kind = "absurd"
    if kind == "unknown_sensor":
        ghost = f"ghost-{rng.randrange(10_000):04d}"
        doc["sensor_id"] = ghost
        doc.pop("lat", None)  # with a position, an unregistered sensor would be placed
        doc.pop("lon", None)
        key = ghost.encode()
    else:
        _spoil_field(rng, kind, doc, hi)
    payload = orjson.dumps(doc)
    if kind == "broken_json":
        payload = payload[: rng.randrange(1, len(payload) - 1)]
    return kind, key, payload


def _spoil_field(rng: random.Random, kind: str, doc: dict[str, object], hi: float) -> None:
    """The faults that change one field of the reading in place."""
    value = float(doc["value"])  # type: ignore[arg-type]  # a reading's value is a float
    if kind == "wrong_type":
        doc["value"] = rng.choice((str(value), None, True, [value]))
    elif kind == "negative":
        doc["value"] = -(abs(value) + round(rng.uniform(1.0, 50.0), 1))
    elif kind == "absurd":
        doc["value"] = round(max(abs(hi), 1.0) * rng.uniform(10.0, 1000.0), 1)
    elif kind == "bad_unit":
        doc["unit"] = rng.choice(("furlong/fortnight", "ppm-ish", "??"))
    elif kind == "bad_time":
        stamp = str(doc["observed_at"])
        doc["observed_at"] = rng.choice(("yesterday", stamp[:-1], "2026-13-45T99:00:00Z"))
