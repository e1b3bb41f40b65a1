"""The ClickHouse table both engine backends share: DDL, reads and row encodings agree."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.models import AggregateRow, AreaLevel, store_row
from pipeline.sinks.base import StoreError
from pipeline.sinks.clickhouse_sql import (
    AGGREGATES_DDL,
    COLUMN_TYPES,
    COLUMNS,
    check_identifier,
    insert_sql,
    query_parameters,
    row_from_mapping,
    rowbinary_string,
    rows_to_columns,
    rows_to_rowbinary,
    select_sql,
)
from tests.unit.sinks.rows import MINUTE, T0, aggregate_row

_DDL_COLUMN = re.compile(r"^\s{4}(\w+)\s+(.+?)(?:\s+DEFAULT .*)?,?$")


def _stored_values(row: AggregateRow) -> list[object]:
    return [str(row.level) if name == "level" else getattr(row, name) for name in COLUMNS]


def test_insert_columns_and_types_are_the_ddl_s_columns_but_written_at() -> None:
    declared = [
        match.groups() for line in AGGREGATES_DDL.splitlines() if (match := _DDL_COLUMN.match(line))
    ]
    assert declared[-1][0] == "written_at"
    assert declared[:-1] == list(zip(COLUMNS, COLUMN_TYPES, strict=True))


def test_columns_hold_each_row_s_values_in_insert_order() -> None:
    rows = [aggregate_row(), aggregate_row(area_code="d2", level=AreaLevel.street)]
    columns = rows_to_columns([store_row(row) for row in rows])
    assert len(columns) == len(COLUMNS)
    assert [[column[i] for column in columns] for i in range(2)] == [
        _stored_values(row) for row in rows
    ]


def _read_string(data: bytes, at: int) -> tuple[str, int]:
    size, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return data[at : at + size].decode(), at + size


def test_rowbinary_decodes_back_to_the_row() -> None:
    row = aggregate_row(area_code="静安区-" + "x" * 200, sum=-0.1, schema_version=3)
    data = rows_to_rowbinary([store_row(row)] * 2)
    start_ms, end_ms = struct.unpack_from("<qq", data)
    at = 16
    level, at = _read_string(data, at)
    area, at = _read_string(data, at)
    metric, at = _read_string(data, at)
    fixed = struct.unpack_from("<QddddQH", data, at)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    decoded = [
        epoch + timedelta(milliseconds=start_ms),
        epoch + timedelta(milliseconds=end_ms),
        level,
        area,
        metric,
        *fixed,
    ]
    assert decoded == _stored_values(row)
    assert len(data) == 2 * (at + struct.calcsize("<QddddQH"))


def _decode_rows(data: bytes) -> list[list[object]]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows, at = [], 0
    while at < len(data):
        start_ms, end_ms = struct.unpack_from("<qq", data, at)
        level, at = _read_string(data, at + 16)
        area, at = _read_string(data, at)
        metric, at = _read_string(data, at)
        fixed = struct.unpack_from("<QddddQH", data, at)
        at += struct.calcsize("<QddddQH")
        moments = [epoch + timedelta(milliseconds=ms) for ms in (start_ms, end_ms)]
        rows.append([*moments, level, area, metric, *fixed])
    return rows


def test_a_batch_of_mixed_rows_decodes_row_by_row() -> None:
    """The encoder reuses what a batch repeats (windows, levels, metrics): every row must
    still carry its own, long area codes (two-byte lengths) included."""
    rows = [
        aggregate_row(
            window_start=T0 + MINUTE * (i % 3),
            window_end=T0 + MINUTE * (i % 3 + 1),
            level=(AreaLevel.district, AreaLevel.street, AreaLevel.grid)[i % 3],
            area_code=f"a{i}" if i % 4 else "长" * (40 + i),
            metric=("pm25", "no2")[i % 2],
            count=i + 1,
            sum=i * 1.5,
            breaches=i % 2,
        )  # fmt: skip
        for i in range(12)
    ]
    encoded = rows_to_rowbinary([store_row(row) for row in rows])
    assert _decode_rows(encoded) == [_stored_values(row) for row in rows]


def test_rowbinary_string_lengths_are_leb128() -> None:
    assert rowbinary_string("") == b"\x00"
    assert rowbinary_string("a" * 127)[:1] == b"\x7f"
    assert rowbinary_string("a" * 300)[:2] == b"\xac\x02"


def test_reads_and_inserts_name_the_database_and_only_a_plain_one() -> None:
    assert "FROM db1.aggregates FINAL" in select_sql("db1", AreaLevel.street)
    assert "level = 'district'" in select_sql("db1", AreaLevel.city)
    assert "level = 'district'" not in select_sql("db1", AreaLevel.district)
    assert insert_sql("db1", "tok") == (
        f"INSERT INTO db1.aggregates ({', '.join(COLUMNS)}) "
        "SETTINGS insert_deduplication_token = 'tok'"
    )
    with pytest.raises(StoreError, match="not a plain identifier"):
        check_identifier("db1; DROP TABLE x")


def test_query_bounds_are_utc_milliseconds_and_must_be_aware() -> None:
    shanghai = timezone(timedelta(hours=8))
    since = datetime(2024, 5, 1, 18, 0, 0, 123456, tzinfo=shanghai)
    params = query_parameters("d1", "pm25", since, since + MINUTE, AreaLevel.district)
    assert params == {
        "level": "district",
        "area_code": "d1",
        "metric": "pm25",
        "since": "2024-05-01 10:00:00.123",
        "until": "2024-05-01 10:01:00.123",
    }
    with pytest.raises(StoreError, match="timezone-aware"):
        query_parameters("d1", "pm25", since.replace(tzinfo=None), since, AreaLevel.district)


def test_result_rows_with_naive_times_are_read_as_utc() -> None:
    row = aggregate_row()
    record = dict(zip(COLUMNS, _stored_values(row), strict=True))
    record["window_start"] = T0.replace(tzinfo=None)
    assert row_from_mapping(record) == row
