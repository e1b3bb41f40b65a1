"""The grid heat map shows what the pipeline computes: local engine -> chDB -> panel SQL.

The dashboards' grid panels are tested on hand-made rows in test_grafana_sql.py; here the
rows are the pipeline's own (the Shanghai sample's grid aggregates of a few thousand
readings, through the worker's stages without Kafka), stored the way the worker stores
them, and the panel must place every cell the pipeline produced at its H3 centre with the
readings it counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import h3
import pytest

from deploy.grafana.generate import DASHBOARD_DIR
from deploy.grafana.queries import TimeRange, clickhouse_queries
from pipeline.engine.local import run
from pipeline.models import AggregateRow, AreaLevel, store_row
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.sinks.base import dedup_token_for
from pipeline.topology import load_topology
from tests.support.city_readings import START, input_records
from tests.support.grafana_sql import PanelRunner
from tests.support.paths import SHANGHAI

BOARD = DASHBOARD_DIR / "incidents.json"


@pytest.fixture(scope="module")
def pipeline_rows(chdb_dir: Path) -> Iterator[tuple[PanelRunner, list[AggregateRow]]]:
    topology = load_topology(SHANGHAI)
    rows = run(topology, input_records(topology, 2000)).rows
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ChdbStore(chdb_dir, database=database)
    store.init()
    stored = [store_row(row) for row in rows]
    store.write(stored, dedup_token=dedup_token_for(stored))
    window = TimeRange(START - timedelta(hours=1), START + timedelta(hours=1))
    try:
        yield PanelRunner(chdb_dir, database, window), rows
    finally:
        store.close()


def test_the_heat_map_places_every_cell_the_pipeline_aggregated(
    pipeline_rows: tuple[PanelRunner, list[AggregateRow]],
) -> None:
    runner, rows = pipeline_rows
    (query,) = [q for q in clickhouse_queries(BOARD) if q.source.endswith("Grid heat map [A]")]
    expected: dict[str, int] = {}
    for row in rows:
        if row.level == AreaLevel.grid and row.metric == "pm25":
            expected[row.area_code] = expected.get(row.area_code, 0) + row.count
    assert len(expected) >= 10
    shown = runner.rows(BOARD, query, metric="pm25")
    assert {r["cell"]: int(r["readings"]) for r in shown} == expected
    for r in shown:
        lat, lon = h3.cell_to_latlng(r["cell"])
        assert abs(r["lat"] - lat) < 1e-6 and abs(r["lon"] - lon) < 1e-6
