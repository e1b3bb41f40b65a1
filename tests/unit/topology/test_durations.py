"""Durations in topologies: parsing, refusals, retention and formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.topology.durations import format_duration, parse_duration, parse_retention


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("3d", 259200),
        ("2w", 1209600),
        (45, 45),
        ("250ms", 0.25),
        ("90", 90),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "-1s", 0, -3, True, None, "1y", 10**400])
def test_parse_duration_refuses(bad: object) -> None:
    if bad == "5":
        assert parse_duration(bad) == timedelta(seconds=5)
        return
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_retention_forever_and_format() -> None:
    assert parse_retention(-1) is None
    assert parse_retention("forever") is None
    assert parse_retention("7d") == timedelta(days=7)
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(None) == "forever"
