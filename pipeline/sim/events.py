"""What the simulator emits, and the simulated clock it is stamped with.

Why: every part of the simulator (readings, faults, reports) yields the same payload type
and writes the same time format; keeping both here lets those parts stay independent of
one another and of the :class:`~pipeline.sim.simulator.Simulator` that combines them.

Simulated times are integers, microseconds since the epoch (UTC): exact, cheap to add,
and ordered. They are written as ISO 8601 UTC with microseconds and a ``Z``
(``2026-11-25T08:00:00.000000Z``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

__all__ = ["US", "SimEvent", "from_us", "iso_utc", "second_stamp", "to_us"]

US = 1_000_000
"""Microseconds per second."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SimEvent(NamedTuple):
    """One payload for a raw topic; ``fault`` names the nonsense injected, if any."""

    topic: str
    key: bytes
    value: bytes
    at_us: int  # simulated event time, microseconds since the epoch (UTC)
    fault: str | None = None


def to_us(moment: datetime) -> int:
    """A timezone-aware moment as microseconds since the epoch (exact, no float)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def second_stamp(sec: int) -> str:
    """The ISO 8601 UTC stamp of a whole second, without fraction or ``Z``."""
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_utc(us: int) -> str:
    """Microseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return f"{second_stamp(us // US)}.{us % US:06d}Z"
