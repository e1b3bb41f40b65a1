"""What one (rule, subject) of a threshold rule remembers, and its JSON codec.

Why plain dataclasses with ``to_dict``/``from_dict``: the worker persists a state per
(rule, subject) in a changelog-backed table (under :func:`state_key`) and must read back
what older workers wrote, so the shapes here are the table's format. Times are ISO 8601
UTC text; sums are exact Shewchuk partials (:mod:`pipeline.aggregates.codec`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.aggregates.accumulator import Accumulator
from pipeline.aggregates.codec import iso as _iso
from pipeline.aggregates.codec import parse_iso as _parse
from pipeline.models import Incident


def state_key(rule_id: str, subject: str) -> str:
    """The table key under which the worker persists one :class:`DetectorState`."""
    return f"{rule_id}|{subject}"


@dataclass(slots=True)
class Sample:
    """One value to evaluate: a sensor reading, or a closed area window's statistic."""

    at: datetime
    event_id: str
    value: float
    areas: dict[str, str]
    event_ids: list[str]

    def key(self) -> tuple[datetime, str]:
        """Event-time order, ties broken by event id so every replay sorts the same."""
        return (self.at, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "at": _iso(self.at),
            "event_id": self.event_id,
            "value": self.value,
            "areas": dict(self.areas),
            "event_ids": list(self.event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        """Inverse of :meth:`to_dict`."""
        return cls(
            at=_parse(data["at"]),
            event_id=str(data["event_id"]),
            value=float(data["value"]),
            areas={str(k): str(v) for k, v in data["areas"].items()},
            event_ids=[str(e) for e in data["event_ids"]],
        )


def window_to_dict(window: Accumulator) -> dict[str, Any]:
    """JSON-able form of an open area window (``first_event_id`` kept for old readers)."""
    return {
        "count": window.count,
        "partials": list(window.partials),
        "min": window.min if window.count else None,
        "max": window.max if window.count else None,
        "event_ids": list(window.event_ids),
        "first_event_id": window.first_event_id,
    }


def window_from_dict(data: Mapping[str, Any]) -> Accumulator:
    """Inverse of :func:`window_to_dict`."""
    raw_min = data.get("min")
    raw_max = data.get("max")
    return Accumulator(
        count=int(data["count"]),
        partials=[float(p) for p in data["partials"]],
        min=math.inf if raw_min is None else float(raw_min),
        max=-math.inf if raw_max is None else float(raw_max),
        event_ids=[str(e) for e in data["event_ids"]],
    )


@dataclass(slots=True)
class Streak:
    """Consecutive breaching samples before an incident opens."""

    first_at: datetime
    count: int
    peak: float
    event_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "first_at": _iso(self.first_at),
            "count": self.count,
            "peak": self.peak,
            "event_ids": list(self.event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Streak:
        """Inverse of :meth:`to_dict`."""
        return cls(
            first_at=_parse(data["first_at"]),
            count=int(data["count"]),
            peak=float(data["peak"]),
            event_ids=[str(e) for e in data["event_ids"]],
        )


@dataclass(slots=True)
class DetectorState:
    """Everything one (rule, subject) remembers; persisted by the worker under
    :func:`state_key` as ``to_dict()`` (plain JSON types only)."""

    rule_id: str
    subject: str
    max_seen: datetime | None = None
    watermark: datetime | None = None
    last_at: datetime | None = None
    last_event_id: str = ""
    buffer: list[Sample] = field(default_factory=list)
    windows: dict[int, Accumulator] = field(default_factory=dict)
    streak: Streak | None = None
    incident: Incident | None = None
    late: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot."""
        return {
            "rule_id": self.rule_id,
            "subject": self.subject,
            "max_seen": None if self.max_seen is None else _iso(self.max_seen),
            "watermark": None if self.watermark is None else _iso(self.watermark),
            "last_at": None if self.last_at is None else _iso(self.last_at),
            "last_event_id": self.last_event_id,
            "buffer": [s.to_dict() for s in self.buffer],
            "windows": {str(k): window_to_dict(w) for k, w in sorted(self.windows.items())},
            "streak": None if self.streak is None else self.streak.to_dict(),
            "incident": None if self.incident is None else self.incident.model_dump(mode="json"),
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rule_id=str(data["rule_id"]),
            subject=str(data["subject"]),
            max_seen=None if data.get("max_seen") is None else _parse(data["max_seen"]),
            watermark=None if data.get("watermark") is None else _parse(data["watermark"]),
            last_at=None if data.get("last_at") is None else _parse(data["last_at"]),
            last_event_id=str(data.get("last_event_id", "")),
            buffer=[Sample.from_dict(s) for s in data.get("buffer", [])],
            windows={int(k): window_from_dict(w) for k, w in data.get("windows", {}).items()},
            streak=None if data.get("streak") is None else Streak.from_dict(data["streak"]),
            incident=(
                None if data.get("incident") is None else Incident.model_validate(data["incident"])
            ),
            late=int(data.get("late", 0)),
        )
