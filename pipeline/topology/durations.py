"""Human durations in topologies: ``30s``, ``5m``, ``1h30m``, ``3d`` or integer seconds.

Why: topologies are written by people; ``retention: 7d`` reads better than ISO 8601 or
milliseconds, and one strict parser gives every section the same rules and messages.
Retention additionally accepts ``-1`` / ``forever`` for "keep forever".
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

__all__ = [
    "Duration",
    "NonNegativeDuration",
    "RetentionPeriod",
    "format_duration",
    "parse_duration",
    "parse_retention",
]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_MAX_SECONDS = 100 * 365 * 86400  # a century: anything longer is a typo


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """Parse ``30s`` / ``5m`` / ``1h30m`` / ``3d`` / ``2w`` / ``250ms`` or a number of seconds.

    Raises ``ValueError`` with a readable message for anything else, for negative
    durations, and for zero unless ``allow_zero``.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        msg = "must be a duration like 30s, 5m, 1h or 3d, not a boolean"
        raise ValueError(msg)
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            msg = "must be a finite number of seconds"
            raise ValueError(msg)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _WHOLE.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        else:
            msg = f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m, 3d or seconds)"
            raise ValueError(msg)
        if not math.isfinite(seconds):
            msg = "must be at most 100 years"
            raise ValueError(msg)
    else:
        msg = f"must be a duration like 30s, 5m, 1h or 3d, not {type(value).__name__}"
        raise ValueError(msg)
    if seconds < 0:
        msg = "must not be negative"
        raise ValueError(msg)
    if seconds == 0 and not allow_zero:
        msg = "must be longer than zero"
        raise ValueError(msg)
    if seconds > _MAX_SECONDS:
        msg = "must be at most 100 years"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


def parse_retention(value: object) -> timedelta | None:
    """Parse a retention period; ``-1``, ``"-1"``, ``forever`` or ``None`` mean keep forever."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == -1:
        return None
    if isinstance(value, str) and value.strip().lower() in {"-1", "forever", "infinite"}:
        return None
    return parse_duration(value)


def format_duration(value: timedelta | None) -> str:
    """The shortest ``1h30m`` spelling of a duration; ``forever`` for ``None``."""
    if value is None:
        return "forever"
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for suffix, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{suffix}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return "".join(parts)


def _positive(value: object) -> timedelta:
    return parse_duration(value)


def _non_negative(value: object) -> timedelta:
    return parse_duration(value, allow_zero=True)


_serialize = PlainSerializer(format_duration, return_type=str, when_used="json")

Duration = Annotated[timedelta, BeforeValidator(_positive), _serialize]
"""A positive duration field (``5m``)."""

NonNegativeDuration = Annotated[timedelta, BeforeValidator(_non_negative), _serialize]
"""A duration field that may be zero (``allowed_lateness: 0s``)."""

RetentionPeriod = Annotated[timedelta | None, BeforeValidator(parse_retention), _serialize]
"""A retention period; ``None`` means forever (``-1`` in the YAML)."""
