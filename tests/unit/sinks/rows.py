"""One aggregate row to vary, for the sink unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.models import AggregateRow, AreaLevel, StoreRow, store_row

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def aggregate_row(**changes: Any) -> AggregateRow:
    """A one-minute district row of pm25 at ``T0``, with ``changes`` applied."""
    values: dict[str, Any] = {
        "window_start": T0,
        "window_end": T0 + MINUTE,
        "level": AreaLevel.district,
        "area_code": "d1",
        "metric": "pm25",
        "count": 4,
        "sum": 10.0,
        "min": 1.5,
        "max": 4.0,
        "mean": 2.5,
        "breaches": 1,
    }
    values.update(changes)
    return AggregateRow(**values)


def stored_row(**changes: Any) -> StoreRow:
    """`aggregate_row(**changes)` as the worker hands it to a store."""
    return store_row(aggregate_row(**changes))
