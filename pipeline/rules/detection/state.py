"""What one (rule, subject) of a threshold rule remembers, and its JSON codec.

Why plain dataclasses with ``to_dict``/``from_dict``: the worker persists a state per
(rule, subject) in a changelog-backed table (under :func:`state_key`) and reads back what
it wrote after a restart, so the shapes here are the table's format. Times are integer
microseconds since the epoch (exact, and cheap on the hot path: a datetime is made only
when an incident event needs one); sums are exact Shewchuk partials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.aggregates.accumulator import Accumulator
from pipeline.aggregates.codec import from_micros
from pipeline.aggregates.watermark import SourceClock
from pipeline.models import AreaCodes, Incident

#: The snapshot version `to_dict` writes (1 held ISO times and no source clock).
STATE_VERSION = 2


def state_key(rule_id: str, subject: str) -> str:
    """The table key under which the worker persists one :class:`DetectorState`."""
    return f"{rule_id}|{subject}"


def _when(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


@dataclass(slots=True)
class Sample:
    """One value to evaluate: a sensor reading, or a closed area window's statistic."""

    at_us: int
    event_id: str
    value: float
    areas: AreaCodes
    """What an incident opened on this sample will carry as its `areas`."""
    event_ids: tuple[str, ...]

    @property
    def at(self) -> datetime:
        """The sample's event time."""
        return from_micros(self.at_us)

    def key(self) -> tuple[int, str]:
        """Event-time order, ties broken by event id so every replay sorts the same."""
        return (self.at_us, self.event_id)

    def to_list(self) -> list[Any]:
        """JSON-able form."""
        return [self.at_us, self.event_id, self.value, list(self.areas), list(self.event_ids)]

    @classmethod
    def from_list(cls, data: list[Any]) -> Sample:
        """Inverse of :meth:`to_list`."""
        at_us, event_id, value, areas, event_ids = data
        district, street, grid, community = areas
        return cls(
            int(at_us), str(event_id), float(value),
            (district, street, grid, community), tuple(str(e) for e in event_ids),
        )  # fmt: skip


def window_to_dict(window: Accumulator) -> dict[str, Any]:
    """JSON-able form of an open area window."""
    return {
        "count": window.count,
        "partials": list(window.partials),
        "min": window.min if window.count else None,
        "max": window.max if window.count else None,
        "event_ids": list(window.event_ids),
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

    first_at_us: int
    count: int
    peak: float
    event_ids: list[str]

    @property
    def first_at(self) -> datetime:
        """When the streak's first breaching sample was observed."""
        return from_micros(self.first_at_us)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "first_at_us": self.first_at_us,
            "count": self.count,
            "peak": self.peak,
            "event_ids": list(self.event_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Streak:
        """Inverse of :meth:`to_dict`."""
        return cls(
            first_at_us=int(data["first_at_us"]),
            count=int(data["count"]),
            peak=float(data["peak"]),
            event_ids=[str(e) for e in data["event_ids"]],
        )


@dataclass(slots=True)
class DetectorState:
    """Everything one (rule, subject) remembers; persisted by the worker under
    :func:`state_key` as ``to_dict()`` (plain JSON types only).

    Sensor rules keep ``max_seen_us`` (their watermark is it minus the lateness) and a
    buffer of readings waiting for it; area rules keep open ``windows`` and a
    :class:`~pipeline.aggregates.watermark.SourceClock` over the area's sensors.
    """

    rule_id: str
    subject: str
    max_seen_us: int | None = None
    watermark_us: int | None = None
    last_at_us: int | None = None
    last_event_id: str = ""
    buffer: list[Sample] | None = None
    """Readings waiting for the watermark, in event-time order (None: none; a sensor
    rule's state made per sensor, so an empty list for each cost MBs per 100,000)."""
    windows: dict[int, Accumulator] | None = None
    """An area rule's open windows by start (None: none yet, and always for a sensor
    rule)."""
    clock: SourceClock | None = None
    streak: Streak | None = None
    incident: Incident | None = None
    late: int = 0

    @property
    def max_seen(self) -> datetime | None:
        """The newest event time seen (sensor rules)."""
        return _when(self.max_seen_us)

    @property
    def watermark(self) -> datetime | None:
        """Everything at or before it has been evaluated."""
        return _when(self.watermark_us)

    @property
    def last_at(self) -> datetime | None:
        """The event time of the last evaluated sample (a window's end, for area rules)."""
        return _when(self.last_at_us)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot."""
        return {
            "version": STATE_VERSION,
            "rule_id": self.rule_id,
            "subject": self.subject,
            "max_seen_us": self.max_seen_us,
            "watermark_us": self.watermark_us,
            "last_at_us": self.last_at_us,
            "last_event_id": self.last_event_id,
            "buffer": [s.to_list() for s in self.buffer or ()],
            "windows": {str(k): window_to_dict(w) for k, w in sorted((self.windows or {}).items())},
            "clock": None if self.clock is None else self.clock.to_dict({}),
            "lateness_us": None if self.clock is None else self.clock.lateness_us,
            "idle_us": None if self.clock is None else self.clock.idle_us,
            "streak": None if self.streak is None else self.streak.to_dict(),
            "incident": None if self.incident is None else self.incident.model_dump(mode="json"),
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorState:
        """Inverse of :meth:`to_dict`."""
        if data.get("version") != STATE_VERSION:
            msg = f"unsupported detector state version {data.get('version')!r}"
            raise ValueError(msg)
        clock = None
        if data.get("clock") is not None:
            clock = SourceClock.from_dict(
                data["clock"], int(data["lateness_us"]), int(data["idle_us"])
            )
        incident = data.get("incident")
        return cls(
            rule_id=str(data["rule_id"]),
            subject=str(data["subject"]),
            max_seen_us=data.get("max_seen_us"),
            watermark_us=data.get("watermark_us"),
            last_at_us=data.get("last_at_us"),
            last_event_id=str(data.get("last_event_id", "")),
            buffer=[Sample.from_list(s) for s in data["buffer"]] if data.get("buffer") else None,
            windows={int(k): window_from_dict(w) for k, w in data["windows"].items()}
            if data.get("windows")
            else None,
            clock=clock,
            streak=None if data.get("streak") is None else Streak.from_dict(data["streak"]),
            incident=None if incident is None else Incident.model_validate(incident),
            late=int(data.get("late", 0)),
        )
