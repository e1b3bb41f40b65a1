"""The store on a ClickHouse cluster: replicated local tables and Distributed tables over
them, ON CLUSTER; the same columns, keys and versions as the single-server tables.

Structure is asserted piece by piece against ``clickhouse_sql`` (the single-server DDL),
never against a copied blob; tests/integration/test_cluster_ddl.py has ClickHouse's own
parser read these statements and the embedded engine run their non-replicated equivalent.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.sinks.base import StoreError
from pipeline.sinks.clickhouse_cluster import LOCAL_SUFFIX, TABLES, cluster_statements
from pipeline.sinks.clickhouse_sql import (
    AGGREGATES_DDL,
    INCIDENTS_DDL,
    INCIDENTS_TABLE,
    TABLE,
    create_statements,
)
from tests.support.paths import TOPOLOGIES

_HEAD = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)(?: ON CLUSTER '([\w.-]+)')?$")
_ENGINE = re.compile(r"^ENGINE = (\w+)\((.*)\)$")


def _parts(statement: str) -> dict[str, str]:
    """A CREATE TABLE statement as head / columns / engine / rest, by line."""
    lines = statement.splitlines()
    head = _HEAD.match(lines[0])
    assert head, lines[0]
    engine_at = next(i for i, line in enumerate(lines) if line.startswith("ENGINE = "))
    engine = _ENGINE.match(lines[engine_at])
    assert engine, lines[engine_at]
    return {
        "database": head[1],
        "table": head[2],
        "cluster": head[3] or "",
        "body": "\n".join(lines[1:engine_at]),
        "engine": engine[1],
        "args": engine[2],
        "rest": "\n".join(lines[engine_at + 1 :]),
    }


def _single_server() -> dict[str, dict[str, str]]:
    return {
        TABLE: _parts(AGGREGATES_DDL.format(database="city")),
        INCIDENTS_TABLE: _parts(INCIDENTS_DDL.format(database="city")),
    }


def test_the_database_then_a_local_and_a_distributed_table_per_table() -> None:
    statements = cluster_statements("city", "prod")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS city ON CLUSTER 'prod'"
    tables = [_parts(s)["table"] for s in statements[1:]]
    assert tables == [
        name for t in TABLES for name in (f"{t.name}{LOCAL_SUFFIX}", t.name)
    ]  # a local table is created before the Distributed table that reads it
    assert {t.name for t in TABLES} == {TABLE, INCIDENTS_TABLE}
    for statement in statements[1:]:
        parts = _parts(statement)
        assert (parts["database"], parts["cluster"]) == ("city", "prod")


def test_local_tables_are_replicated_copies_of_the_single_server_tables() -> None:
    single = _single_server()
    for table in TABLES:
        local = next(
            _parts(s)
            for s in cluster_statements("city", "prod")[1:]
            if _parts(s)["table"] == f"{table.name}{LOCAL_SUFFIX}"
        )
        plain = single[table.name]
        assert local["body"] == plain["body"]  # the same columns and types
        assert local["engine"] == "Replicated" + plain["engine"] == "ReplicatedReplacingMergeTree"
        path, replica, version = (arg.strip() for arg in local["args"].split(","))
        assert version == plain["args"]  # the same version column decides the newest row
        assert path == f"'/clickhouse/tables/{{shard}}/city/{table.name}{LOCAL_SUFFIX}'"
        assert replica == "'{replica}'"
        plain_layout = plain["rest"].rsplit("\nSETTINGS", 1)[0]
        assert local["rest"].startswith(plain_layout + "\nSETTINGS ")  # same ORDER BY
        assert "replicated_deduplication_window" in local["rest"]
        assert "non_replicated" not in local["rest"]


def test_distributed_tables_shard_by_the_row_key() -> None:
    statements = {_parts(s)["table"]: s for s in cluster_statements("city", "prod")[1:]}
    for table in TABLES:
        lines = statements[table.name].splitlines()
        assert lines[1] == f"AS city.{table.name}{LOCAL_SUFFIX}"
        parts = _parts(statements[table.name])
        assert parts["engine"] == "Distributed"
        cluster, database, local, key = (a.strip() for a in parts["args"].split(",", 3))
        assert (cluster, database, local) == ("'prod'", "city", f"{table.name}{LOCAL_SUFFIX}")
        # Every version of a row goes to one shard, so FINAL (per shard) keeps one row.
        order_by = re.search(r"ORDER BY \(?([\w, ]+)\)?", _single_server()[table.name]["rest"])
        assert order_by
        hashed = re.fullmatch(r"cityHash64\(([\w, ]+)\)", key)
        assert hashed, key
        key_columns = [c.strip() for c in order_by[1].split(",")]
        hashed_columns = [c.strip() for c in hashed[1].split(",")]
        assert hashed_columns == key_columns[: len(hashed_columns)]


def test_the_non_replicated_equivalent_has_no_cluster_clause() -> None:
    replicated = cluster_statements("city", "prod")
    plain = cluster_statements("city", "prod", replicated=False)
    assert all("ON CLUSTER" not in s and "Replicated" not in s for s in plain)
    assert [_parts(s)["table"] for s in plain[1:]] == [_parts(s)["table"] for s in replicated[1:]]
    assert all("Distributed('prod'" in s for s in plain[2::2])
    assert all("non_replicated_deduplication_window" in s for s in plain[1::2])


@pytest.mark.parametrize(
    ("database", "cluster"),
    [("city;DROP", "prod"), ("city", "prod' SETTINGS x=1"), ("city", ""), ("city", "a b")],
)
def test_names_that_are_not_identifiers_are_refused(database: str, cluster: str) -> None:
    with pytest.raises(StoreError):
        cluster_statements(database, cluster)


runner = CliRunner()


def test_store_init_prints_the_cluster_ddl_without_connecting() -> None:
    result = runner.invoke(
        app,
        ["store", "init", "-t", str(TOPOLOGIES / "shanghai.yaml"), "--cluster", "prod", "--print"],
    )
    assert result.exit_code == 0, result.output
    printed = [s.strip() for s in result.stdout.split(";\n") if s.strip()]
    assert printed == [s.rstrip(";") for s in cluster_statements("cityops", "prod")]


def test_store_init_dry_run_prints_the_single_server_ddl() -> None:
    result = runner.invoke(app, ["store", "init", "-t", str(TOPOLOGIES / "demo.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    printed = [s.strip() for s in result.stdout.split(";\n") if s.strip()]
    assert printed == create_statements("cityops")


def test_a_cluster_needs_the_server_store() -> None:
    result = runner.invoke(
        app, ["store", "init", "-t", str(TOPOLOGIES / "demo.yaml"), "--cluster", "prod"]
    )
    assert result.exit_code == 2
    assert "sinks.store: clickhouse" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
