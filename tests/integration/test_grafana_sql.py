"""Every ClickHouse query of every dashboard returns data from the embedded engine.

The store is filled the way the worker fills it (street, district and grid aggregate rows
through `ChdbStore.write`, incident versions through `write_incidents`, some of them twice
or out of order), every ClickHouse variable's query runs and gives the variable its first
value, then every panel's SQL runs with the plugin's macros expanded for the last six
hours, and must return rows. A few panels are checked for what their rows say.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.grafana.generate import DASHBOARD_DIR
from deploy.grafana.queries import SqlQuery, TimeRange, clickhouse_queries
from pipeline.models import AreaLevel, store_row
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.sinks.base import dedup_token_for
from pipeline.sinks.incidents import incidents_token_for
from tests.support.grafana_sql import PanelRunner
from tests.support.store_rows import GRID_CELLS, aggregate, incident_rows

DISTRICTS = ("310101", "310104")
STREETS = ("310101002", "310104012")


def _rows(now: datetime) -> list[Any]:
    """An hour of one-minute windows: streets, their districts (one breach in three
    windows), and three grid cells (and a grid code that is no H3 cell), for pm25;
    districts also for no2."""
    start = now.replace(second=0, microsecond=0) - timedelta(hours=1)
    rows = []
    for minute in range(60):
        for i, district in enumerate(DISTRICTS):
            breaches = 1 if minute % 3 == i else 0
            rows.append(
                aggregate(AreaLevel.district, district, minute, breaches=breaches, start=start)
            )
            rows.append(aggregate(AreaLevel.district, district, minute, metric="no2", start=start))
            rows.append(
                aggregate(AreaLevel.street, STREETS[i], minute, breaches=breaches, start=start)
            )
        rows.append(aggregate(AreaLevel.grid, "not-an-h3-cell", minute, start=start))
        for j, cell in enumerate(GRID_CELLS):
            rows.append(
                aggregate(AreaLevel.grid, cell, minute, mean=30.0 + 10 * j, breaches=j, start=start)
            )
    return rows


@pytest.fixture(scope="module")
def filled(chdb_dir: Path) -> Iterator[PanelRunner]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ChdbStore(chdb_dir, database=database)
    store.init()
    now = datetime.now(UTC)
    rows = _rows(now)
    stored = [store_row(row) for row in rows]
    store.write(stored, dedup_token=dedup_token_for(stored))
    store.write(stored[:50], dedup_token=dedup_token_for(stored[:50]) + "-replay")  # FINAL once
    incidents = incident_rows(12, start=now - timedelta(minutes=30))
    newest_first = sorted(incidents, key=lambda r: -r.version)
    store.write_incidents(newest_first, dedup_token=incidents_token_for(newest_first))
    try:
        yield PanelRunner(
            chdb_dir, database, TimeRange(now - timedelta(hours=6), now + timedelta(minutes=1))
        )
    finally:
        store.close()


DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
QUERIES = [(path, query) for path in DASHBOARDS for query in clickhouse_queries(path)]


def test_the_lister_finds_every_clickhouse_panel() -> None:
    sources = {query.source for _, query in QUERIES}
    assert {source.split(":")[0] for source in sources} == {
        "city-operations.json",
        "incidents.json",
    }
    assert "city-operations.json: Threshold breaches in aggregates (ClickHouse) [A]" in sources
    assert "incidents.json: Grid heat map [A]" in sources
    assert "incidents.json: Incident map [A]" in sources
    assert len(QUERIES) == 10


@pytest.mark.parametrize(("path", "query"), QUERIES, ids=[q.source for _, q in QUERIES])
def test_every_clickhouse_panel_returns_data(
    filled: PanelRunner, path: Path, query: SqlQuery
) -> None:
    rows = filled.rows(path, query)
    assert rows, f"{query.source} returned no rows"
    if query.time_series:
        assert "time" in rows[0], "a time-series panel needs a time column"


def _panel(path: str, title: str) -> SqlQuery:
    return next(
        q for p, q in QUERIES if p.name == path and q.source.split(": ", 1)[1] == f"{title} [A]"
    )


def _run(filled: PanelRunner, path: str, title: str) -> list[dict[str, Any]]:
    return filled.rows(DASHBOARD_DIR / path, _panel(path, title))


def test_city_breaches_come_from_the_district_rows(filled: PanelRunner) -> None:
    rows = _run(filled, "city-operations.json", "Threshold breaches in aggregates (ClickHouse)")
    by_metric: dict[str, int] = {}
    for row in rows:
        by_metric[row["metric"]] = by_metric.get(row["metric"], 0) + int(row["breaches"])
    # district i breaches once in the minutes where minute % 3 == i: 20 + 20 of the 60,
    # and the replayed rows count once (FINAL)
    assert by_metric == {"pm25": 40, "no2": 0}


def test_the_grid_heat_map_places_every_cell(filled: PanelRunner) -> None:
    rows = _run(filled, "incidents.json", "Grid heat map")
    assert {row["cell"] for row in rows} == set(GRID_CELLS)
    for row in rows:
        assert 30.5 < row["lat"] < 31.5 and 121.0 < row["lon"] < 122.0  # in Shanghai
        assert row["readings"] == 60 * 4
    table = _run(filled, "incidents.json", "Grid cells")
    assert [row["cell"] for row in table] == list(reversed(GRID_CELLS))  # most breaches first
    assert [row["breaches"] for row in table] == [120, 60, 0]
    assert [row["mean"] for row in table] == [50.0, 40.0, 30.0]


def test_the_incident_panels_show_the_newest_versions(filled: PanelRunner) -> None:
    listed = _run(filled, "incidents.json", "Incidents")
    assert len(listed) == 12 and len({row["incident_id"] for row in listed}) == 12
    assert [row["severity"] for row in listed[:3]] == ["red"] * 3  # red first
    located = _run(filled, "incidents.json", "Incident map")
    assert len(located) == 12 and all(row["lat"] is not None for row in located)
    (count,) = _run(filled, "incidents.json", "Open incidents (store)")
    assert int(count["open"]) == 9  # one in four of the incidents is resolved
