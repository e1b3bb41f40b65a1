"""An in-memory AggregateStore with the same replay semantics as the ClickHouse table.

Why: pure tests of the batcher and the worker's wiring need a store with no engine. It
keeps every insert like a MergeTree keeps parts, deduplicates repeated tokens like
``non_replicated_deduplication_window`` does, and reads like ``FINAL`` (last write per
key wins), so a test that passes here means the same thing against chDB.

Not a backend a topology can name (it keeps nothing beyond the process), so it lives
beside ``backends/``, not in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from pipeline.models import AggregateRow, AreaLevel, StoreRow, row_model
from pipeline.sinks.base import StoreError, StoreUnavailable, check_token, roll_up_city
from pipeline.sinks.incidents import IncidentRow

RowKey = tuple[str, str, str, datetime]


def row_key(row: AggregateRow) -> RowKey:
    """The deterministic key (level, area_code, metric, window_start)."""
    return (str(row.level), row.area_code, row.metric, row.window_start)


class MemoryStore:
    """AggregateStore in a list; ``fail_next`` / ``down`` simulate an outage."""

    def __init__(self, *, dedup_window: int = 1000) -> None:
        self.inserts: list[tuple[str, tuple[AggregateRow, ...]]] = []
        self.attempts = 0
        self.down = False
        self.fail_next = 0
        self.retry_after: float | None = None
        self.on_write: Callable[[Sequence[AggregateRow]], None] | None = None
        self.incidents: dict[str, IncidentRow] = {}
        self.incident_tokens: list[str] = []
        self._dedup_window = dedup_window
        self._initialized = False
        self._closed = False
        self._lock = threading.Lock()

    def init(self) -> None:
        """Nothing to create; marks the store usable."""
        self._initialized = True

    def write(self, rows: Sequence[StoreRow], *, dedup_token: str) -> None:
        """Append one insert (of the rows' models) unless its token is among the last
        ``dedup_window`` ones."""
        token = check_token(dedup_token)
        with self._lock:
            self._attempt()
            if not rows:
                return
            recent = {t for t, _ in self.inserts[-self._dedup_window :]}
            if token in recent:
                return
            models = tuple(row_model(row) for row in rows)
            self.inserts.append((token, models))
        if self.on_write is not None:
            self.on_write(models)

    def write_incidents(self, rows: Sequence[IncidentRow], *, dedup_token: str) -> None:
        """Keep each incident's highest version (ReplacingMergeTree(version) + FINAL)."""
        token = check_token(dedup_token)
        with self._lock:
            self._attempt()
            if not rows or token in self.incident_tokens[-self._dedup_window :]:
                return
            self.incident_tokens.append(token)
            del self.incident_tokens[: -self._dedup_window]
            for row in rows:
                current = self.incidents.get(row.incident_id)
                if current is None or row.version >= current.version:
                    self.incidents[row.incident_id] = row

    def final(self) -> dict[RowKey, AggregateRow]:
        """Every key's latest row, like ``SELECT ... FINAL``."""
        with self._lock:
            latest: dict[RowKey, AggregateRow] = {}
            for _, rows in self.inserts:
                for row in rows:
                    latest[row_key(row)] = row
            return latest

    @property
    def stored_rows(self) -> int:
        """Rows physically stored, repeats included (what FINAL collapses)."""
        with self._lock:
            return sum(len(rows) for _, rows in self.inserts)

    def query(
        self,
        area_code: str,
        metric: str,
        since: datetime,
        until: datetime,
        level: AreaLevel,
    ) -> list[AggregateRow]:
        """Rows with ``since <= window_start < until``, one per window, in time order.

        The city level is rolled up from every district row, like the SQL backends.
        """
        self._check_open()
        if level == AreaLevel.city:
            districts = [
                row
                for (lvl, _, met, start), row in self.final().items()
                if lvl == str(AreaLevel.district) and met == metric and since <= start < until
            ]
            return roll_up_city(districts, area_code)
        found = [
            row
            for (lvl, area, met, start), row in self.final().items()
            if lvl == str(level) and area == area_code and met == metric and since <= start < until
        ]
        return sorted(found, key=lambda row: row.window_start)

    def close(self) -> None:
        """Refuse further calls."""
        self._closed = True

    def _attempt(self) -> None:
        """Count a write attempt; fail it while the simulated outage lasts."""
        self._check_open()
        self.attempts += 1
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            msg = "memory store is down (simulated outage)"
            raise StoreUnavailable(msg, retry_after=self.retry_after)

    def _check_open(self) -> None:
        if self._closed:
            msg = "store is closed"
            raise StoreError(msg)
        if not self._initialized:
            msg = "store not initialized: call init() first"
            raise StoreError(msg)
