"""Rows/s into the aggregate store: embedded chDB, and clickhouse-connect over HTTP.

The server path runs the test-support ClickHouse HTTP server (on chDB) in its own
process, so client and server do not share a GIL. Each insert goes through the real
store's ``write`` (RowBinary for chDB, Native via a reused insert context for the client).

    .venv/bin/python bench/store_rows.py --rows 200000 --batch 10000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models import AggregateRow, AreaLevel, StoreRow, store_row  # noqa: E402
from pipeline.sinks.backends.chdb import ChdbStore  # noqa: E402
from pipeline.sinks.backends.clickhouse import ClickHouseStore  # noqa: E402
from pipeline.sinks.base import AggregateStore, dedup_token_for  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_rows(n: int, offset: int) -> list[StoreRow]:
    """n distinct rows: 500 streets x 4 metrics x consecutive minutes."""
    rows = []
    for i in range(offset, offset + n):
        minute, cell = divmod(i, 2000)
        street, metric = divmod(cell, 4)
        start = T0 + timedelta(minutes=minute)
        rows.append(store_row(
            AggregateRow(
                window_start=start,
                window_end=start + timedelta(minutes=1),
                level=AreaLevel.street,
                area_code=f"3101010{street:03d}",
                metric=("pm25", "pm10", "no2", "o3")[metric],
                count=12,
                sum=12 * 35.5,
                min=20.0,
                max=51.0,
                mean=35.5,
                breaches=1,
            )
        ))  # fmt: skip
    return rows


def measure(store: AggregateStore, total: int, batch: int) -> float:
    """Write ``total`` rows in ``batch``-row inserts; rows/s of the writes alone."""
    store.init()
    store.write(make_rows(batch, 10**9), dedup_token="warmup")  # noqa: S106 - first insert pays setup
    batches = [make_rows(batch, i) for i in range(0, total, batch)]
    started = time.perf_counter()
    for rows in batches:
        store.write(rows, dedup_token=dedup_token_for(rows))
    elapsed = time.perf_counter() - started
    return sum(len(b) for b in batches) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="aggregate store insert throughput")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable)")
    parser.add_argument("--backend", choices=["chdb", "clickhouse", "both"], default="both")
    args = parser.parse_args()
    batches = args.batch or [1_000, 10_000]
    with tempfile.TemporaryDirectory(prefix="cityops-bench-") as tmp:
        if args.backend in ("chdb", "both"):
            for size in batches:
                store = ChdbStore(Path(tmp) / "local", database=f"bench_chdb_{size}")
                rate = measure(store, args.rows, size)
                print(f"chdb        batch={size:>6}  {rate:>10,.0f} rows/s")
        if args.backend in ("clickhouse", "both"):
            server = subprocess.Popen(
                [sys.executable, "-m", "tests.support.clickhouse_http", "--path",
                 str(Path(tmp) / "server")],
                stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
            try:
                assert server.stdout is not None
                url = server.stdout.readline().strip()
                for size in batches:
                    client = ClickHouseStore(
                        url, database=f"bench_ch_{size}", password=SecretStr("")
                    )
                    rate = measure(client, args.rows, size)
                    client.close()
                    print(f"clickhouse  batch={size:>6}  {rate:>10,.0f} rows/s  (HTTP, Native)")
            finally:
                server.terminate()
                server.wait(timeout=10)


if __name__ == "__main__":
    main()
