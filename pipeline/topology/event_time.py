"""The ``event_time`` section: which reading times are believed, and how long a silent
source may hold windows back.

Why a section: a reading stamped a day (or a millennium) ahead used to move a district's
watermark and turn every later reading into a late drop; a sensor that stopped reporting
used to hold every window of its district open. Both limits are the deployment's call.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from pipeline.topology.base import Frozen
from pipeline.topology.durations import Duration

__all__ = ["EventTime"]


class EventTime(Frozen):
    """Bounds on reading and report times, relative to when they reached the broker.

    ``max_clock_skew``: a reading or report stamped later than its arrival plus this is
    dead-lettered as ``clock_skew`` (a device clock ahead, or a forged time).
    ``max_age``: one stamped earlier than its arrival minus this is dead-lettered as
    ``too_old`` (a replayed archive belongs in a backfill, not in the live stream).
    ``idle_timeout``: a source (sensor) that has delivered nothing for this long, in
    arrival time, stops holding the watermark of its area's windows back; unset, ten
    aggregation windows and at least ten minutes.

    Arrival is the raw record's log-append time (the raw topics are created with
    ``message.timestamp.type=LogAppendTime``, so a producer cannot set it). Whatever the
    arrival, times before 2000 or from 2100 on are refused.
    """

    max_clock_skew: Duration = Field(default="5m", validate_default=True)
    max_age: Duration = Field(default="30d", validate_default=True)
    idle_timeout: Duration | None = None

    def idle(self, window: timedelta) -> timedelta:
        """The idle timeout for windows of ``window``: the setting, else the default."""
        if self.idle_timeout is not None:
            return self.idle_timeout
        return max(10 * window, timedelta(minutes=10))
