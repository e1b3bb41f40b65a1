"""Aggregate stores: one protocol (``base``), one module per backend (``backends/``).

A topology's ``sinks.store`` names the backend; ``registry`` finds it among the modules
of ``backends/``. Backends import their engine lazily (chDB costs ~0.5 s to import), so
importing this package, and finding the backends, is cheap.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.sinks.base import AggregateStore, StoreError, StoreUnavailable, dedup_token_for
from pipeline.sinks.clickhouse_sql import AGGREGATES_DDL
from pipeline.sinks.registry import StoreOverrides, open_backend, setting

__all__ = [
    "AGGREGATES_DDL",
    "AggregateStore",
    "StoreError",
    "StoreUnavailable",
    "claim_store",
    "dedup_token_for",
    "open_store",
]


def open_store(
    sinks: Any, environ: Mapping[str, str], *, chdb_path: str | Path | None = None
) -> AggregateStore:
    """The store a topology's ``sinks`` section names, built from ``environ``.

    ``sinks`` is ``Topology.sinks`` (or a mapping of the same shape): ``store`` names the
    backend (default chdb) and ``sinks.<store>`` holds its settings; the backend's module
    in ``backends/`` reads them. ``chdb_path`` (``Settings.chdb_path``, env
    CITYOPS_CHDB_PATH) overrides ``sinks.chdb.path``, so the worker and the CLI open the
    same directory.
    """
    overrides = StoreOverrides(chdb_path=Path(chdb_path) if chdb_path else None)
    return open_backend(str(setting(sinks, "store", "chdb")), sinks, environ, overrides)


def claim_store(store: AggregateStore) -> None:
    """Take what ``store`` holds exclusively, now: the embedded store's directory (a
    ``StoreError`` at once when another process has it, naming the settings to change).
    A server store holds nothing exclusively, and has no ``claim``.

    Why at start-up: the first write comes only when a window closes, and a store that
    cannot be opened there is retried without end (``StoreWriter``).
    """
    take = getattr(store, "claim", None)
    if callable(take):
        take()
