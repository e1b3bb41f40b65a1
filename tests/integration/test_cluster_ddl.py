"""`cityops store init --cluster`'s DDL on ClickHouse's own engine.

The replicated statements need ClickHouse Keeper, which the embedded engine does not
run, so ClickHouse's parser reads them (they must come back as the same statement);
their non-replicated equivalent (`replicated=False`: no ON CLUSTER, ReplacingMergeTree)
is executed over a one-shard cluster, and the embedded backend then initialises, writes
and reads through the Distributed tables as a worker does (tests/integration/cluster_probe.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.sinks.clickhouse_cluster import cluster_statements
from tests.support.paths import ROOT


def _probe(tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "tests.integration.cluster_probe", str(tmp_path)],
        cwd=ROOT, capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _normal(sql: str) -> str:
    """Whitespace and identifier quoting aside, as ClickHouse prints a statement back."""
    text = re.sub(r"\s+", " ", sql.replace("`", "")).replace("( ", "(").replace(" )", ")")
    return text.replace("ON CLUSTER 'prod'", "ON CLUSTER prod")


@pytest.mark.integration
def test_cluster_ddl_parses_and_its_non_replicated_equivalent_serves_the_backend(
    tmp_path: Path,
) -> None:
    result = _probe(tmp_path)
    rendered = cluster_statements("cityops", "prod", replicated=True)
    assert [_normal(s) for s in result["parsed"]] == [_normal(s) for s in rendered]
    assert result["tables"] == [
        {"name": "aggregates", "engine": "Distributed"},
        {"name": "aggregates_local", "engine": "ReplacingMergeTree"},
        {"name": "incidents", "engine": "Distributed"},
        {"name": "incidents_local", "engine": "ReplacingMergeTree"},
    ]
    # 4 rows, the same 4 again under the same token (dropped), 1 recomputed window
    assert result["local_rows"] == 5
    [d0] = result["d0"]
    assert (d0["count"], d0["sum"]) == (5, 12.5)  # the newest version, once
    city = {row["window_start"]: row["count"] for row in result["city"]}
    assert list(city.values()) == [5, 4, 4, 4]  # rolled up from the district rows
