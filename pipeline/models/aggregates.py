"""The aggregate row: statistics of one metric in one area over one window.

Why here and not in `pipeline/aggregates/`: it is what the store keeps and what
`cityops aggregates query` prints, so the sinks (below the aggregates floor) need it too.
"""

from __future__ import annotations

from pydantic import Field

from pipeline.models.base import SCHEMA_VERSION, Finite, UtcDatetime, _Event
from pipeline.models.enums import AreaLevel

__all__ = ["AggregateRow"]


class AggregateRow(_Event):
    """Statistics of one metric in one area over one tumbling window."""

    window_start: UtcDatetime
    window_end: UtcDatetime
    level: AreaLevel
    area_code: str
    metric: str
    count: int = Field(ge=0)
    sum: Finite
    min: Finite
    max: Finite
    mean: Finite
    breaches: int = Field(default=0, ge=0)
    schema_version: int = SCHEMA_VERSION
