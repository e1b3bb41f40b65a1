"""Run the cluster DDL on the embedded engine, in a process of its own; print JSON.

chDB serves one data directory per process, with the configuration it opened with, so
this runs as ``python -m tests.integration.cluster_probe WORKDIR`` (from
test_cluster_ddl.py). The configuration defines a one-shard cluster on this very engine;
the *replicated* statements are read by ClickHouse's parser (``formatQuerySingleLine``,
they need Keeper to run), and their non-replicated equivalent is executed; then the
embedded backend (``ChdbStore``) initialises, writes and reads through the Distributed
tables exactly as a worker would.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.models import AreaLevel
from pipeline.sinks import dedup_token_for
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.sinks.clickhouse_cluster import cluster_statements
from tests.unit.sinks.rows import MINUTE, T0, stored_row

CLUSTER = "cityops_probe"
CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <{CLUSTER}>
      <shard><replica><host>localhost</host><port>9000</port></replica></shard>
    </{CLUSTER}>
  </remote_servers>
</clickhouse>
"""


def _escaped(text: str) -> str:
    """A query parameter's text form (TSV escaping)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _rows(session: Any, sql: str) -> list[dict[str, Any]]:
    result = orjson.loads(bytes(session.query(sql, "JSON").bytes()))
    return list(result["data"])


def probe(workdir: Path) -> dict[str, Any]:
    from chdb import session as chdb_session

    (workdir / "config.xml").write_text(CONFIG, encoding="utf-8")
    data = workdir / "chdb"
    config = workdir / "config.xml"
    session: Any = chdb_session.Session(f"file:{data}?config-file={config}")  # type: ignore[no-untyped-call]  # untyped library
    parsed = [
        str(
            session.query(
                "SELECT formatQuerySingleLine({q:String})", "TSVRaw", params={"q": _escaped(s)}
            )
        ).strip()
        for s in cluster_statements("cityops", "prod", replicated=True)
    ]
    for statement in cluster_statements("cityops", CLUSTER, replicated=False):
        session.query(statement)
    store = ChdbStore(data, database="cityops")  # the backend shares this process's engine
    store.init()  # finds the Distributed tables: CREATE ... IF NOT EXISTS leaves them
    first = [stored_row(area_code=f"d{i}", window_start=T0 + i * MINUTE) for i in range(4)]
    store.write(first, dedup_token=dedup_token_for(first))
    store.write(first, dedup_token=dedup_token_for(first))  # a retry: dropped by its token
    # d0's window again, recomputed, in another batch: FINAL reads only the newest
    again = [stored_row(area_code="d0", count=5, sum=12.5)]
    store.write(again, dedup_token=dedup_token_for(again))
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    return {
        "parsed": parsed,
        "tables": _rows(
            session,
            "SELECT name, engine FROM system.tables WHERE database = 'cityops' ORDER BY name",
        ),
        "local_rows": _rows(session, "SELECT count() AS n FROM cityops.aggregates_local")[0]["n"],
        "d0": [
            r.model_dump(mode="json")
            for r in store.query("d0", "pm25", since, until, AreaLevel.district)
        ],
        "city": [
            r.model_dump(mode="json")
            for r in store.query("310000", "pm25", since, until, AreaLevel.city)
        ],
    }


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(probe(Path(sys.argv[1]))).decode())
