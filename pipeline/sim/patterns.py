"""Daily cycles: how each kind of measurement rises and falls over a local day.

Why: a flat stream would hide what windows, thresholds and dashboards are for. Values
follow the topology's local time: rush hours 7-9 and 17-19 (speeds drop; traffic, NO2
and noise rise), particulates higher at night, ozone peaking in the afternoon, water
demand and pressure mirroring each other. A metric's profile (see
:mod:`pipeline.sim.world`) names its curve; the level at a moment is the curve
interpolated linearly between whole hours.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.sim.events import US

__all__ = ["CURVES", "hour_of_day", "utc_offset_s"]

# Hourly multipliers (local time, index = hour); interpolated linearly between hours.
# fmt: off
CURVES: dict[str, tuple[float, ...]] = {
    "flat": (1.0,) * 24,
    "particulate": (1.25, 1.3, 1.3, 1.25, 1.2, 1.15, 1.15, 1.3, 1.35, 1.2, 1.0, 0.9,
                    0.85, 0.8, 0.8, 0.8, 0.85, 1.05, 1.2, 1.2, 1.15, 1.15, 1.2, 1.25),
    "ozone": (0.4, 0.35, 0.3, 0.3, 0.3, 0.35, 0.45, 0.6, 0.8, 1.0, 1.25, 1.5,
              1.7, 1.85, 1.9, 1.8, 1.6, 1.3, 1.0, 0.8, 0.65, 0.55, 0.5, 0.45),
    "exhaust": (0.8, 0.7, 0.65, 0.6, 0.65, 0.8, 1.1, 1.5, 1.6, 1.3, 1.1, 1.0,
                1.0, 1.0, 1.0, 1.05, 1.2, 1.5, 1.6, 1.3, 1.1, 1.0, 0.95, 0.9),
    "speed": (1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 0.45, 0.35, 0.55, 0.7, 0.72,
              0.7, 0.72, 0.7, 0.68, 0.6, 0.42, 0.35, 0.5, 0.72, 0.85, 0.92, 0.97),
    "traffic": (0.12, 0.08, 0.06, 0.05, 0.07, 0.15, 0.45, 0.95, 1.0, 0.8, 0.65, 0.62,
                0.6, 0.62, 0.62, 0.66, 0.8, 1.0, 0.98, 0.75, 0.55, 0.4, 0.28, 0.18),
    "noise": (0.78, 0.76, 0.75, 0.75, 0.76, 0.8, 0.9, 1.0, 1.02, 0.98, 0.96, 0.96,
              0.95, 0.96, 0.96, 0.97, 0.99, 1.02, 1.02, 0.98, 0.95, 0.92, 0.86, 0.8),
    "demand": (0.45, 0.4, 0.38, 0.38, 0.42, 0.6, 0.95, 1.15, 1.1, 0.95, 0.9, 0.95,
               1.0, 0.92, 0.88, 0.88, 0.92, 1.0, 1.1, 1.15, 1.05, 0.9, 0.7, 0.55),
    "pressure": (1.015, 1.02, 1.022, 1.022, 1.018, 1.0, 0.965, 0.945, 0.95, 0.965, 0.97,
                 0.965, 0.96, 0.968, 0.972, 0.972, 0.968, 0.96, 0.95, 0.945, 0.955, 0.97,
                 0.99, 1.005),
    "oxygen": (0.9, 0.88, 0.86, 0.85, 0.85, 0.86, 0.9, 0.95, 1.0, 1.05, 1.1, 1.13,
               1.15, 1.16, 1.15, 1.12, 1.08, 1.03, 0.99, 0.96, 0.94, 0.92, 0.91, 0.9),
}
# fmt: on


def utc_offset_s(moment: datetime, tz: ZoneInfo) -> int:
    """The zone's offset from UTC at ``moment``, in whole seconds."""
    offset = moment.astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def hour_of_day(at_us: int, offset_s: int) -> tuple[int, int, float]:
    """Where ``at_us`` falls in the local day: the hour, the next hour and the fraction.

    A curve's level there is ``curve[h] + (curve[h2] - curve[h]) * frac``.
    """
    hour = ((at_us // US + offset_s) % 86400 + (at_us % US) / US) / 3600.0
    h = int(hour)
    return h, (h + 1) % 24, hour - h
