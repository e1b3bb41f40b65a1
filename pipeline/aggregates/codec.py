"""Encodings shared by every serializable stage state: exact sums and UTC times.

Why one place: detection, clusters and aggregation all persist their state as JSON and
must round-trip times and sums without drift; a second copy of these would drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


def iso(moment: datetime) -> str:
    """ISO 8601 text of an aware datetime, in UTC."""
    return moment.astimezone(UTC).isoformat()


def parse_iso(text: str) -> datetime:
    """The aware UTC datetime of ISO 8601 text written by :func:`iso`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def add_exact(partials: list[float], value: float) -> None:
    """Add ``value`` to Shewchuk partials in place; ``math.fsum(partials)`` stays exact.

    The algorithm behind ``math.fsum``: sums equal an offline recomputation bit for bit
    whatever the order the values arrived in.
    """
    i = 0
    x = value
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]
