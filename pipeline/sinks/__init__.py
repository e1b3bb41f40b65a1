"""Aggregate stores: one protocol, an embedded chDB backend and a ClickHouse server backend.

Backends import their engine lazily (chDB costs ~0.5 s to import), so importing this
package is cheap.
"""

from pipeline.sinks.base import (
    AGGREGATES_DDL,
    AggregateStore,
    StoreError,
    StoreUnavailable,
    dedup_token_for,
)

__all__ = [
    "AGGREGATES_DDL",
    "AggregateStore",
    "StoreError",
    "StoreUnavailable",
    "dedup_token_for",
]
