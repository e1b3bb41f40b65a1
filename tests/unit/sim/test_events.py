"""The simulated clock: exact microseconds and the stamps the adapters parse back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pipeline.sim.events import US, from_us, iso_utc, to_us


def test_microseconds_round_trip_exactly_whatever_the_offset() -> None:
    moment = datetime(2026, 11, 25, 8, 0, 0, 123_456, tzinfo=UTC)
    us = to_us(moment)
    assert us == int(moment.timestamp()) * US + 123_456
    assert from_us(us) == moment and from_us(us).tzinfo is UTC
    assert to_us(moment.astimezone(timezone(timedelta(hours=8)))) == us
    assert to_us(datetime(1960, 1, 1, tzinfo=UTC)) < 0


def test_stamps_are_utc_with_microseconds_and_z() -> None:
    us = to_us(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    assert iso_utc(us) == "2026-11-25T08:00:00.000000Z"
    assert iso_utc(us + 5) == "2026-11-25T08:00:00.000005Z"
    assert iso_utc(us + 61 * US + 999_999) == "2026-11-25T08:01:01.999999Z"
    assert datetime.fromisoformat(iso_utc(us + 7)) == from_us(us + 7)
