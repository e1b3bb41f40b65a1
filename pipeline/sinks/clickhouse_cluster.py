"""The store's tables on a ClickHouse cluster: ``cityops store init --cluster NAME``.

Why this layout (ClickHouse's own pattern for a sharded, replicated table):
- ``<table>_local`` on every node, ``ON CLUSTER``: a ``ReplicatedReplacingMergeTree`` with
  the same columns, version column and ordering key as the single-server table
  (``clickhouse_sql``), replicated through ClickHouse Keeper under
  ``/clickhouse/tables/{shard}/<database>/<table>_local``, one replica per ``{replica}``
  macro. Replicated tables deduplicate retried blocks (and honour
  ``insert_deduplication_token``) by themselves.
- ``<table>`` itself, ``ON CLUSTER``: a ``Distributed`` table over the local tables. The
  workers and every reader use this name, so nothing else changes: a worker's
  ``init()`` (``CREATE TABLE IF NOT EXISTS``) finds it and leaves it alone.
- The sharding key is a hash of the row key's leading columns, so every version of one
  row lands on one shard, and ``FINAL`` (which merges within a shard) still returns one
  row per key; the city roll-up's ``GROUP BY`` is merged across shards by ClickHouse.

Rendered without ``replicated``, the same statements use ``ReplacingMergeTree`` and no
``ON CLUSTER``: the non-replicated equivalent, which the embedded engine (chDB) runs in the
tests over a one-shard cluster, to show the tables and the ``Distributed`` layer work with
the backends' own inserts and reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.sinks.base import StoreError
from pipeline.sinks.clickhouse_sql import (
    AGGREGATES_COLUMNS_SQL,
    AGGREGATES_LAYOUT_SQL,
    INCIDENTS_COLUMNS_SQL,
    INCIDENTS_TABLE,
    TABLE,
    check_identifier,
)

__all__ = ["LOCAL_SUFFIX", "ClusterTable", "check_cluster", "cluster_statements"]

#: The suffix of the per-node table under each Distributed table.
LOCAL_SUFFIX = "_local"

#: How many recent insert blocks a replicated table remembers to drop a retried one.
DEDUPLICATION_WINDOW = 1000

# Cluster names come from the servers' <remote_servers> (XML element names).
_CLUSTER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ClusterTable:
    """One of the store's tables: its columns, version column, layout and sharding key."""

    name: str
    columns: str
    version: str
    layout: str
    shard_by: str


TABLES: tuple[ClusterTable, ...] = (
    ClusterTable(
        name=TABLE,
        columns=AGGREGATES_COLUMNS_SQL,
        version="written_at",
        layout=AGGREGATES_LAYOUT_SQL,
        shard_by="cityHash64(level, area_code, metric)",
    ),
    ClusterTable(
        name=INCIDENTS_TABLE,
        columns=INCIDENTS_COLUMNS_SQL,
        version="version",
        layout="ORDER BY incident_id",
        shard_by="cityHash64(incident_id)",
    ),
)


def check_cluster(name: str) -> str:
    """Return ``name`` if it can name a cluster in ``<remote_servers>`` (it goes into DDL)."""
    if not _CLUSTER.match(name):
        msg = (
            f"not a cluster name: {name!r} (letters, digits, '_', '.', '-'; the name in the "
            "servers' <remote_servers>)"
        )
        raise StoreError(msg)
    return name


def cluster_statements(database: str, cluster: str, *, replicated: bool = True) -> list[str]:
    """The DDL of the store on ``cluster``, in order (all idempotent): the database, then
    per table the local table and the Distributed table over it."""
    db, name = check_identifier(database), check_cluster(cluster)
    on_cluster = f" ON CLUSTER '{name}'" if replicated else ""
    statements = [f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"]
    for table in TABLES:
        local = f"{table.name}{LOCAL_SUFFIX}"
        statements += [
            f"CREATE TABLE IF NOT EXISTS {db}.{local}{on_cluster}\n"
            f"{table.columns}\n"
            f"ENGINE = {_engine(table, db, local, replicated=replicated)}\n"
            f"{table.layout}\n"
            f"SETTINGS {_dedup_setting(replicated)} = {DEDUPLICATION_WINDOW}",
            f"CREATE TABLE IF NOT EXISTS {db}.{table.name}{on_cluster}\n"
            f"AS {db}.{local}\n"
            f"ENGINE = Distributed('{name}', {db}, {local}, {table.shard_by})",
        ]
    return statements


def _engine(table: ClusterTable, db: str, local: str, *, replicated: bool) -> str:
    if not replicated:
        return f"ReplacingMergeTree({table.version})"
    # {shard} and {replica} are the servers' macros, expanded on each node.
    path = f"/clickhouse/tables/{{shard}}/{db}/{local}"
    return f"ReplicatedReplacingMergeTree('{path}', '{{replica}}', {table.version})"


def _dedup_setting(replicated: bool) -> str:
    return (
        "replicated_deduplication_window" if replicated else "non_replicated_deduplication_window"
    )
