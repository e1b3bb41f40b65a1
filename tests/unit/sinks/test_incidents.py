"""Incident records become store rows whatever the contract's version, and the incidents
table keeps each incident's newest version."""

from __future__ import annotations

import re
import struct

import orjson
import pytest
from prometheus_client import CollectorRegistry

from pipeline.metrics import Metrics
from pipeline.sinks.base import StoreError
from pipeline.sinks.batching import Backoff
from pipeline.sinks.clickhouse_sql import (
    INCIDENT_COLUMNS,
    INCIDENTS_DDL,
    create_statements,
    incidents_to_columns,
    incidents_to_rowbinary,
)
from pipeline.sinks.incidents import incident_row, incidents_token_for
from pipeline.sinks.memory import MemoryStore
from pipeline.sinks.writer import StoreWriter
from tests.support.store_rows import GRID_CELLS, MINUTE, T0, incident_json

_DDL_COLUMN = re.compile(r"^\s{4}(\w+) (.+?)(?: DEFAULT .*)?,?$")


def test_a_published_incident_becomes_its_row() -> None:
    row = incident_row(incident_json(location={"lat": 31.2353, "lon": 121.4846}))
    assert (row.incident_id, row.version, row.state, row.severity) == (
        "inc-aq-001-pm25", 1, "open", "red",
    )  # fmt: skip
    assert (row.owner_level, row.owner_area) == ("street", "310101002")
    assert (row.district, row.street, row.grid) == ("310101", "310101002", GRID_CELLS[0])
    assert (row.lat, row.lon) == (31.2353, 121.4846)
    assert (row.peak_value, row.threshold, row.metric, row.category) == (260.0, 250.0, "pm25", "")
    assert (row.opened_at, row.updated_at, row.ack_due) == (T0, T0 + MINUTE, T0 + 15 * MINUTE)
    assert row.updated_at.tzinfo is not None


def test_location_is_optional_and_read_in_either_shape() -> None:
    assert incident_row(incident_json()).lat is None  # before incidents carried one
    point = {"type": "Point", "coordinates": [121.4846, 31.2353]}
    data = orjson.loads(incident_json())
    data["location"] = point
    assert (incident_row(data).lat, incident_row(data).lon) == (31.2353, 121.4846)
    data["location"] = None
    assert incident_row(data).lon is None


def test_an_unknown_field_is_ignored_and_a_missing_required_one_refused() -> None:
    data = orjson.loads(incident_json())
    data["field_from_the_future"] = {"x": 1}
    assert incident_row(orjson.dumps(data)).incident_id == "inc-aq-001-pm25"
    del data["severity"]
    with pytest.raises(StoreError, match="not an incident record"):
        incident_row(orjson.dumps(data))
    with pytest.raises(StoreError, match="timezone"):
        incident_row({**orjson.loads(incident_json()), "opened_at": "2024-05-01T10:00:00"})


def test_the_ddl_declares_the_insert_columns_then_written_at() -> None:
    ddl = INCIDENTS_DDL.format(database="db1")
    declared = [m.groups() for line in ddl.splitlines() if (m := _DDL_COLUMN.match(line))]
    assert declared == [*INCIDENT_COLUMNS, ("written_at", "DateTime64(6, 'UTC')")]
    assert "ReplacingMergeTree(version)" in ddl and "ORDER BY incident_id" in ddl
    assert ddl in create_statements("db1")


def test_columns_and_rowbinary_carry_every_value_and_nulls() -> None:
    located = incident_row(incident_json(location={"lat": 1.5, "lon": 2.5}))
    bare = incident_row(incident_json(resolve_due=None))
    columns = incidents_to_columns([located, bare])
    names = [name for name, _ in INCIDENT_COLUMNS]
    assert columns[names.index("lat")] == [1.5, None]
    assert columns[names.index("resolve_due")] == [located.resolve_due, None]
    data = incidents_to_rowbinary([located])
    # incident_id, then version as UInt32 after its LEB128-prefixed text
    ident = located.incident_id.encode()
    assert data[: 1 + len(ident)] == bytes([len(ident)]) + ident
    assert struct.unpack_from("<I", data, 1 + len(ident)) == (1,)
    nulls = len(incidents_to_rowbinary([located])) - len(incidents_to_rowbinary([bare]))
    assert nulls == 2 * 8 + 8  # lat and lon, and resolve_due: a value each, not a null


def test_tokens_follow_identity_and_version() -> None:
    one = [incident_row(incident_json())]
    assert incidents_token_for(one) == incidents_token_for(list(one))
    newer = [incident_row(incident_json(version=2))]
    assert incidents_token_for(one) != incidents_token_for(newer)


def test_memory_store_keeps_the_newest_version_whatever_the_order() -> None:
    store = MemoryStore()
    store.init()
    v1, v2 = (
        incident_row(incident_json(version=v, state=s))
        for v, s in ((1, "open"), (2, "acknowledged"))
    )
    store.write_incidents([v2], dedup_token=incidents_token_for([v2]))
    store.write_incidents([v1], dedup_token=incidents_token_for([v1]))
    assert store.incidents == {"inc-aq-001-pm25": v2}


async def test_the_writer_retries_incidents_through_an_outage() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    store = MemoryStore()
    store.fail_next = 2
    writer = StoreWriter(store, metrics, backend="memory")
    writer.batcher.backoff = Backoff(initial=0.01, maximum=0.02)
    rows = [incident_row(incident_json(incident_id=f"i{n}", subject=f"s{n}")) for n in range(3)]
    await writer.write_incidents(rows)
    assert set(store.incidents) == {"i0", "i1", "i2"}
    assert registry.get_sample_value("cityops_store_failures_total", {"backend": "memory"}) == 2
    assert registry.get_sample_value("cityops_store_retries_total", {"backend": "memory"}) == 2
