"""The store's tables in ClickHouse's terms, shared by both ClickHouse-engine backends:
the aggregates, and the incidents' current state (``incidents``, see ``sinks.incidents``).

Why one module for the embedded engine (chDB) and the server (clickhouse-connect): chDB
*is* ClickHouse, so the table a developer gets locally is byte for byte the table
production gets, and a column added here is added for both. Everything that knows the
table's columns lives here: the DDL, the reads, their bind parameters, and the row
encodings the backends insert with.

How the table keeps the store's promises (``base``) is layered:
1. ``ReplacingMergeTree(written_at)`` ordered by the deterministic row key
   ``(level, area_code, metric, window_start)``: a replayed row replaces the earlier copy,
   whatever batch it arrives in. Every read uses ``FINAL``, so answers are exact before
   the background merge has happened. This is what makes replays with *different* batch
   boundaries harmless.
2. ``insert_deduplication_token`` (derived from the batch's content) with
   ``non_replicated_deduplication_window`` > 0: a retried identical batch (the client's
   own retry after a dropped connection, or our batcher's retry) is dropped by the server
   before it even makes a part, so replays do not pile up parts.

The incidents table is ``ReplacingMergeTree(version)`` ordered by ``incident_id``: the
newest version of each incident is what ``FINAL`` reads, whatever order rows land in.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.models import STORE_ROW_FIELDS, AggregateRow, AreaLevel, StoreRow
from pipeline.sinks.base import StoreError
from pipeline.sinks.incidents import IncidentRow

TABLE = "aggregates"

#: Insert column order (everything but ``written_at``, which the server fills): a
#: `StoreRow`'s, so a row is inserted as it is.
COLUMNS: tuple[str, ...] = STORE_ROW_FIELDS

#: The types of ``COLUMNS``, as the DDL declares them (an insert needs no ``DESCRIBE``).
COLUMN_TYPES: tuple[str, ...] = (
    "DateTime64(3, 'UTC')",
    "DateTime64(3, 'UTC')",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "UInt64",
    "Float64",
    "Float64",
    "Float64",
    "Float64",
    "UInt64",
    "UInt16",
)

#: The aggregates' columns, as the DDL declares them (``written_at`` the server fills).
AGGREGATES_COLUMNS_SQL = """
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
""".strip()

#: How the aggregates are laid out on disk, after the engine (any MergeTree flavour).
AGGREGATES_LAYOUT_SQL = (
    "PARTITION BY toYYYYMM(window_start)\nORDER BY (level, area_code, metric, window_start)"
)

#: The one table definition both backends execute; ``{database}`` is substituted.
AGGREGATES_DDL = (
    "CREATE TABLE IF NOT EXISTS {database}.aggregates\n"
    f"{AGGREGATES_COLUMNS_SQL}\n"
    "ENGINE = ReplacingMergeTree(written_at)\n"
    f"{AGGREGATES_LAYOUT_SQL}\n"
    "SETTINGS non_replicated_deduplication_window = 1000"
)

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
#: ``base.roll_up_city`` is the same computation in Python.
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

#: The incidents' current state (``sinks.incidents``): column, type, in insert order.
INCIDENTS_TABLE = "incidents"
INCIDENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("incident_id", "String"),
    ("version", "UInt32"),
    ("state", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("kind", "LowCardinality(String)"),
    ("rule_id", "LowCardinality(String)"),
    ("subject", "String"),
    ("metric", "LowCardinality(String)"),
    ("category", "LowCardinality(String)"),
    ("owner_level", "LowCardinality(String)"),
    ("owner_area", "LowCardinality(String)"),
    ("district", "LowCardinality(String)"),
    ("street", "LowCardinality(String)"),
    ("grid", "String"),
    ("lat", "Nullable(Float64)"),
    ("lon", "Nullable(Float64)"),
    ("peak_value", "Nullable(Float64)"),
    ("threshold", "Nullable(Float64)"),
    ("escalations", "UInt32"),
    ("last_action", "LowCardinality(String)"),
    ("opened_at", "DateTime64(3, 'UTC')"),
    ("updated_at", "DateTime64(3, 'UTC')"),
    ("ack_due", "Nullable(DateTime64(3, 'UTC'))"),
    ("resolve_due", "Nullable(DateTime64(3, 'UTC'))"),
    ("schema_version", "UInt16"),
)

#: The incidents' columns, as the DDL declares them (``written_at`` the server fills).
INCIDENTS_COLUMNS_SQL = (
    "(\n"
    + "".join(f"    {name} {kind},\n" for name, kind in INCIDENT_COLUMNS)
    + "    written_at DateTime64(6, 'UTC') DEFAULT now64(6)\n)"
)

#: One row per incident after merges (the highest ``version``); reads use ``FINAL``.
INCIDENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {database}.incidents\n"
    f"{INCIDENTS_COLUMNS_SQL}\n"
    "ENGINE = ReplacingMergeTree(version)\n"
    "ORDER BY incident_id\n"
    "SETTINGS non_replicated_deduplication_window = 1000"
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier (database names go into DDL text)."""
    if not _IDENTIFIER.match(name):
        msg = f"not a plain identifier: {name!r} (letters, digits, underscore)"
        raise StoreError(msg)
    return name


def create_statements(database: str) -> list[str]:
    """The DDL both backends run in ``init()``, in order (all idempotent)."""
    db = check_identifier(database)
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        AGGREGATES_DDL.format(database=db),
        INCIDENTS_DDL.format(database=db),
    ]


def insert_sql(
    database: str, token: str, *, table: str = TABLE, columns: Sequence[str] = COLUMNS
) -> str:
    """The INSERT head for ``columns`` of ``table`` with the batch's dedup token (checked
    by the caller)."""
    return (
        f"INSERT INTO {check_identifier(database)}.{check_identifier(table)} "
        f"({', '.join(columns)}) SETTINGS insert_deduplication_token = '{token}'"
    )


def select_sql(database: str, level: AreaLevel) -> str:
    """The read both backends run for ``level``: stored rows, or the city roll-up."""
    template = CITY_ROLLUP_SQL if level == AreaLevel.city else SELECT_SQL
    return template.format(database=check_identifier(database))


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


def format_ts(moment: datetime) -> str:
    """A DateTime64(3, 'UTC') literal for query parameters."""
    if moment.tzinfo is None:
        msg = "query bounds must be timezone-aware"
        raise StoreError(msg)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def row_from_mapping(record: dict[str, Any]) -> AggregateRow:
    """An AggregateRow from one result row (timestamps aware UTC)."""
    values = dict(record)
    for name in ("window_start", "window_end"):
        moment = values[name]
        if isinstance(moment, datetime) and moment.tzinfo is None:
            values[name] = moment.replace(tzinfo=UTC)
    return AggregateRow.model_validate(values)


def rows_to_columns(rows: Sequence[StoreRow]) -> list[list[Any]]:
    """The rows column by column, in ``COLUMNS`` order (clickhouse-connect's Native insert)."""
    if not rows:
        return [[] for _ in COLUMNS]
    return [list(column) for column in zip(*rows, strict=True)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_FIXED = struct.Struct("<QddddQH")  # count, sum, min, max, mean, breaches, schema_version
_MOMENTS = struct.Struct("<qq")  # window_start, window_end: DateTime64(3) ticks


def rowbinary_string(value: str) -> bytes:
    """A RowBinary String: LEB128 length, then the UTF-8 bytes."""
    data = value.encode()
    size = len(data)
    if size < 0x80:  # the usual case: a one-byte length
        return bytes((size,)) + data
    prefix = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            return bytes(prefix) + data


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def rows_to_rowbinary(rows: Sequence[StoreRow]) -> bytes:
    """The rows in ClickHouse's RowBinary format, in ``COLUMNS`` order.

    Why not Arrow: building any pyarrow array imports pandas (~50 MB of worker RSS) to
    check whether the input is a pandas object; RowBinary is a few struct packs per row
    and inserts as fast at the worker's batch sizes (bench/store_rows.py). A batch has
    few windows, levels and metrics, and its areas repeat in each window: each string is
    encoded once per batch (an area's encoding looked up, not made, cut a row from 0.98 to
    0.66 us for 4,800 grid rows over six windows). A row's items are in ``COLUMNS``
    order already (`StoreRow`).
    """
    out = bytearray()
    spans: dict[tuple[datetime, datetime], bytes] = {}
    names: dict[str, bytes] = {}
    fixed = _FIXED.pack
    for (
        start, end, level, area, metric, count, total, low, high, mean, breaches, version,
    ) in rows:  # fmt: skip
        span = spans.get((start, end))
        if span is None:
            span = spans[(start, end)] = _MOMENTS.pack(_millis(start), _millis(end))
        out += span
        # Spelled out three times: a dict subclass with `__missing__` was 30% slower a row.
        level_bytes = names.get(level)
        if level_bytes is None:
            level_bytes = names[level] = rowbinary_string(level)
        out += level_bytes
        area_bytes = names.get(area)
        if area_bytes is None:
            area_bytes = names[area] = rowbinary_string(area)
        out += area_bytes
        metric_bytes = names.get(metric)
        if metric_bytes is None:
            metric_bytes = names[metric] = rowbinary_string(metric)
        out += metric_bytes
        out += fixed(count, total, low, high, mean, breaches, version)
    return bytes(out)


def incidents_to_columns(rows: Sequence[IncidentRow]) -> list[list[Any]]:
    """Incident rows column by column, in ``INCIDENT_COLUMNS`` order."""
    return [[getattr(row, name) for row in rows] for name, _ in INCIDENT_COLUMNS]


_NULL, _PRESENT = b"\x01", b"\x00"
_TICKS = struct.Struct("<q")  # DateTime64(3): milliseconds since the epoch
_SCALARS: dict[str, struct.Struct] = {
    "UInt32": struct.Struct("<I"),
    "UInt16": struct.Struct("<H"),
    "Float64": struct.Struct("<d"),
}


def _rowbinary_value(kind: str, value: Any) -> bytes:
    """One value of a ClickHouse type in RowBinary (the types ``INCIDENT_COLUMNS`` uses)."""
    if kind.startswith("Nullable("):
        if value is None:
            return _NULL
        return _PRESENT + _rowbinary_value(kind[len("Nullable(") : -1], value)
    if kind.startswith("DateTime64(3"):
        return _TICKS.pack(_millis(value))
    if kind in _SCALARS:
        return _SCALARS[kind].pack(value)
    return rowbinary_string(str(value))


def incidents_to_rowbinary(rows: Sequence[IncidentRow]) -> bytes:
    """Incident rows in RowBinary, in ``INCIDENT_COLUMNS`` order (chDB's insert)."""
    out = bytearray()
    for row in rows:
        for name, kind in INCIDENT_COLUMNS:
            out += _rowbinary_value(kind, getattr(row, name))
    return bytes(out)
