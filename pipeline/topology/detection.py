"""The ``detection`` section: how rule evaluation treats out-of-order readings.

Why: a reading may wait for older, late readings of its subject before rules see it;
how long is a trade between prompt incidents and complete evidence.
"""

from __future__ import annotations

from pipeline.topology.base import Frozen
from pipeline.topology.durations import NonNegativeDuration

__all__ = ["Detection"]


class Detection(Frozen):
    """Rule evaluation over each subject's readings, in event time.

    ``allowed_lateness``: how long a reading waits for older, out-of-order readings of the
    same subject before it is evaluated (and an incident can open). Unset, it is the
    aggregation's lateness. Zero evaluates every in-order reading at once (fastest
    incidents); a sensor's readings arrive in order on their keyed partition, so only
    genuinely out-of-order ones are then dropped from detection (still aggregated).
    """

    allowed_lateness: NonNegativeDuration | None = None
