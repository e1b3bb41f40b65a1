"""The AggregateStore contract shared by every backend: protocol, DDL, errors, dedup tokens.

Why one DDL string for both backends: the embedded engine (chDB) *is* ClickHouse, so the
table a developer gets locally is byte for byte the table production gets.

Idempotence (DESIGN §6, "a replay after a crash changes no aggregate") is layered:
1. ``ReplacingMergeTree(written_at)`` ordered by the deterministic row key
   ``(level, area_code, metric, window_start)``: a replayed row replaces the earlier copy,
   whatever batch it arrives in. Every read uses ``FINAL``, so answers are exact before
   the background merge has happened. This is what makes replays with *different* batch
   boundaries harmless.
2. ``insert_deduplication_token`` (derived from the batch's content) with
   ``non_replicated_deduplication_window`` > 0: a retried identical batch (the client's
   own retry after a dropped connection, or our batcher's retry) is dropped by the server
   before it even makes a part, so replays do not pile up parts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pipeline.models import AggregateRow, AreaLevel

TABLE = "aggregates"

#: Insert column order (everything but ``written_at``, which the server fills).
COLUMNS: tuple[str, ...] = (
    "window_start",
    "window_end",
    "level",
    "area_code",
    "metric",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "breaches",
    "schema_version",
)

#: The one table definition both backends execute; ``{database}`` is substituted.
AGGREGATES_DDL = """
CREATE TABLE IF NOT EXISTS {database}.aggregates
(
    window_start   DateTime64(3, 'UTC'),
    window_end     DateTime64(3, 'UTC'),
    level          LowCardinality(String),
    area_code      LowCardinality(String),
    metric         LowCardinality(String),
    count          UInt64,
    sum            Float64,
    min            Float64,
    max            Float64,
    mean           Float64,
    breaches       UInt64,
    schema_version UInt16,
    written_at     DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (level, area_code, metric, window_start)
SETTINGS non_replicated_deduplication_window = 1000
""".strip()

#: Reads see one row per key, exactly, before and after background merges.
SELECT_SQL = """
SELECT window_start, window_end, level, area_code, metric,
       count, sum, min, max, mean, breaches, schema_version
FROM {database}.aggregates FINAL
WHERE level = {{level:String}}
  AND area_code = {{area_code:String}}
  AND metric = {{metric:String}}
  AND window_start >= {{since:DateTime64(3, 'UTC')}}
  AND window_start < {{until:DateTime64(3, 'UTC')}}
ORDER BY window_start
""".strip()

#: The city's rows, rolled up from district rows per window (the worker stores no city
#: rows: a city spans every partition, a district lives wholly in one). One database holds
#: one deployment, so every district row in it belongs to the city asked for; the rows
#: carry that city's code. The inner select reads FINAL (one row per district and window)
#: and renames the columns so the outer aggregates cannot resolve to their own aliases.
CITY_ROLLUP_SQL = """
SELECT window_start,
       max(w_end) AS window_end,
       'city' AS level,
       {{area_code:String}} AS area_code,
       metric,
       sum(n) AS count,
       sum(total) AS sum,
       min(lo) AS min,
       max(hi) AS max,
       sum(total) / sum(n) AS mean,
       sum(over) AS breaches,
       max(version) AS schema_version
FROM
(
    SELECT window_start, window_end AS w_end, metric, count AS n, sum AS total,
           min AS lo, max AS hi, breaches AS over, schema_version AS version
    FROM {database}.aggregates FINAL
    WHERE level = 'district'
      AND metric = {{metric:String}}
      AND window_start >= {{since:DateTime64(3, 'UTC')}}
      AND window_start < {{until:DateTime64(3, 'UTC')}}
)
GROUP BY window_start, metric
ORDER BY window_start
""".strip()

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


class StoreError(Exception):
    """A store operation failed in a way retrying will not fix (bad SQL, schema, config)."""


class StoreUnavailable(StoreError):
    """The store cannot take the request now (down, overloaded); retry after a pause.

    ``retry_after`` (seconds) is the store's hint, or None for the caller's own backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class AggregateStore(Protocol):
    """Where closed-window aggregate rows land; every backend implements exactly this."""

    def init(self) -> None:
        """Create the database and tables if missing (idempotent)."""
        ...

    def write(self, rows: Sequence[AggregateRow], *, dedup_token: str) -> None:
        """Store ``rows`` as one insert; a repeat with the same token is a no-op."""
        ...

    def query(
        self,
        area_code: str,
        metric: str,
        since: datetime,
        until: datetime,
        level: AreaLevel,
    ) -> list[AggregateRow]:
        """Rows of one area and metric with ``since <= window_start < until``, in time order."""
        ...

    def close(self) -> None:
        """Release connections; the store object is unusable afterwards."""
        ...


def query_parameters(
    area_code: str, metric: str, since: datetime, until: datetime, level: AreaLevel
) -> dict[str, str]:
    """The bind parameters of ``select_sql`` (the same for every backend)."""
    return {
        "level": str(level),
        "area_code": area_code,
        "metric": metric,
        "since": format_ts(since),
        "until": format_ts(until),
    }


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier (database names go into DDL text)."""
    if not _IDENTIFIER.match(name):
        msg = f"not a plain identifier: {name!r} (letters, digits, underscore)"
        raise StoreError(msg)
    return name


def check_token(token: str) -> str:
    """Return ``token`` if it is safe to embed in a SETTINGS clause."""
    if not _TOKEN.match(token):
        msg = f"dedup token must match {_TOKEN.pattern}, got {token!r}"
        raise StoreError(msg)
    return token


def dedup_token_for(rows: Sequence[AggregateRow]) -> str:
    """A token derived from the rows' content: equal batches get equal tokens.

    Content (not offsets) because a token drops a repeat *even when the data differ*; a
    content hash can only ever drop an exact repeat.
    """
    digest = hashlib.blake2b(digest_size=16)
    for row in rows:
        digest.update(
            (
                f"{row.level}|{row.area_code}|{row.metric}|{row.window_start.isoformat()}|"
                f"{row.window_end.isoformat()}|{row.count}|{row.sum!r}|{row.min!r}|"
                f"{row.max!r}|{row.mean!r}|{row.breaches}|{row.schema_version}\n"
            ).encode()
        )
    return f"agg-{len(rows)}-{digest.hexdigest()}"


def create_statements(database: str) -> list[str]:
    """The DDL both backends run in ``init()``, in order (all idempotent)."""
    db = check_identifier(database)
    return [f"CREATE DATABASE IF NOT EXISTS {db}", AGGREGATES_DDL.format(database=db)]


def row_from_mapping(record: dict[str, Any]) -> AggregateRow:
    """An AggregateRow from one result row (timestamps aware UTC)."""
    values = dict(record)
    for name in ("window_start", "window_end"):
        moment = values[name]
        if isinstance(moment, datetime) and moment.tzinfo is None:
            values[name] = moment.replace(tzinfo=UTC)
    return AggregateRow.model_validate(values)


def select_sql(database: str, level: AreaLevel) -> str:
    """The read both backends run for ``level``: stored rows, or the city roll-up."""
    template = CITY_ROLLUP_SQL if level == AreaLevel.city else SELECT_SQL
    return template.format(database=check_identifier(database))


def roll_up_city(district_rows: Sequence[AggregateRow], city_code: str) -> list[AggregateRow]:
    """The city roll-up of district rows in Python (what ``CITY_ROLLUP_SQL`` computes)."""
    groups: dict[tuple[datetime, str], list[AggregateRow]] = {}
    for row in district_rows:
        groups.setdefault((row.window_start, row.metric), []).append(row)
    rolled: list[AggregateRow] = []
    for (start, metric), rows in sorted(groups.items(), key=lambda item: item[0]):
        count = sum(r.count for r in rows)
        total = sum(r.sum for r in rows)
        rolled.append(
            AggregateRow(
                window_start=start,
                window_end=max(r.window_end for r in rows),
                level=AreaLevel.city,
                area_code=city_code,
                metric=metric,
                count=count,
                sum=total,
                min=min(r.min for r in rows),
                max=max(r.max for r in rows),
                mean=total / count if count else 0.0,
                breaches=sum(r.breaches for r in rows),
                schema_version=max(r.schema_version for r in rows),
            )
        )
    return rolled


def format_ts(moment: datetime) -> str:
    """A DateTime64(3, 'UTC') literal for query parameters."""
    if moment.tzinfo is None:
        msg = "query bounds must be timezone-aware"
        raise StoreError(msg)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
