"""`cityops aggregates query` against real stores: embedded chDB (via CITYOPS_CHDB_PATH)
and a ClickHouse server (clickhouse-connect over HTTP to the test-support server), with
the city rolled up from district rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from pipeline.cli.aggregates import aggregates_app
from pipeline.cli.common import console
from pipeline.models import AggregateRow, AreaLevel, store_row
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.sinks.backends.clickhouse import ClickHouseStore
from pipeline.sinks.base import AggregateStore
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.paths import DEMO

runner = CliRunner()
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)


def row(area: str, level: AreaLevel, minute: int, count: int, total: float,
        low: float, high: float, breaches: int) -> AggregateRow:  # fmt: skip
    return AggregateRow(
        window_start=T0 + timedelta(minutes=minute),
        window_end=T0 + timedelta(minutes=minute + 1),
        level=level, area_code=area, metric="pm25",
        count=count, sum=total, min=low, max=high, mean=total / count, breaches=breaches,
    )  # fmt: skip


ROWS = [
    row("310101", AreaLevel.district, 0, 4, 200.0, 20.0, 90.0, 1),
    row("310101", AreaLevel.district, 1, 2, 50.0, 10.0, 40.0, 0),
    row("310104", AreaLevel.district, 0, 6, 400.0, 5.0, 120.0, 3),
    row("310101002", AreaLevel.street, 0, 4, 200.0, 20.0, 90.0, 1),
    # older than --since 1h: never shown
    row("310101", AreaLevel.district, -90, 1, 1.0, 1.0, 1.0, 0),
]


@pytest.fixture(params=["chdb", "clickhouse"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chdb_dir: Path,
    ch_server: ClickHouseHTTPServer,
) -> Path:
    """A demo topology on its own database in the backend, holding ``ROWS``."""
    database = f"q_{uuid.uuid4().hex[:12]}"
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace("chdb: {path: chdb-demo}", f"chdb: {{path: nowhere, database: {database}}}")
    text = text.replace("database: cityops}", f"database: {database}}}")
    store: AggregateStore
    if request.param == "chdb":
        monkeypatch.setenv("CITYOPS_CHDB_PATH", str(chdb_dir))
        store = ChdbStore(chdb_dir, database=database)
    else:
        text = text.replace("store: chdb", "store: clickhouse")
        monkeypatch.setenv("CITYOPS_CLICKHOUSE_URL", ch_server.url)
        monkeypatch.setenv("CITYOPS_CLICKHOUSE_USER", "cityops")
        monkeypatch.setenv("CITYOPS_CLICKHOUSE_PASSWORD", "s3cret")
        store = ClickHouseStore(
            ch_server.url, database=database, user="cityops", password=SecretStr("s3cret")
        )
    topology = tmp_path / "demo.yaml"
    topology.write_text(text, encoding="utf-8")
    store.init()
    store.write([store_row(row) for row in ROWS], dedup_token="query-rows")  # noqa: S106
    store.close()
    monkeypatch.setattr(console, "width", 200)
    return topology


def query(topology: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        aggregates_app,
        ["query", "--topology", str(topology), "--metric", "pm25", "--since", "1h", "--store",
         *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_district_rows_from_the_store(deployment: Path) -> None:
    code, output = query(deployment, "--area", "310101", "--json")
    assert code == 0, output
    got = [AggregateRow.model_validate_json(line) for line in output.splitlines()]
    assert got == ROWS[:2]


def test_city_rows_are_rolled_up_from_districts(deployment: Path) -> None:
    code, output = query(deployment, "--area", "310000", "--json")
    assert code == 0, output
    got = [AggregateRow.model_validate_json(line) for line in output.splitlines()]
    assert [(r.level, r.area_code, r.window_start) for r in got] == [
        (AreaLevel.city, "310000", T0), (AreaLevel.city, "310000", T0 + timedelta(minutes=1)),
    ]  # fmt: skip
    assert [(r.count, r.sum, r.min, r.max, r.mean, r.breaches) for r in got] == [
        (10, 600.0, 5.0, 120.0, 60.0, 4),
        (2, 50.0, 10.0, 40.0, 25.0, 0),
    ]


def test_the_table(deployment: Path) -> None:
    code, output = query(deployment, "--area", "310101002")
    assert code == 0, output
    cells = " ".join(output.replace("│", " ").split())
    assert "pm25 in 310101002 Nanjing East Road (street), last 1h — 1 windows" in cells
    assert f"{T0:%Y-%m-%d %H:%M:%S} – " in cells and " 4 200 20 90 50 1 " in cells
    assert "read from store" in cells
