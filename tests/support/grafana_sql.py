"""Run the dashboards' ClickHouse queries against the embedded engine, as Grafana would.

The plugin's macros are expanded for a time window, a variable with "All" takes its
`allValue`, and a ClickHouse query variable takes the first value its own query returns
(or the value a test gives it); the dashboards' database (`cityops`) is replaced by the
test's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from deploy.grafana.queries import (
    SqlQuery,
    TimeRange,
    clickhouse_variables,
    dashboard_values,
    expand_sql,
)
from pipeline.sinks.backends.chdb import ENGINE_LOCK, get_session


@dataclass
class PanelRunner:
    """The engine at `path`, the test's `database`, and the dashboards' time `window`."""

    path: Path
    database: str
    window: TimeRange

    def run(self, sql: str) -> list[dict[str, Any]]:
        """Rows of `sql`, with the dashboards' database replaced by this test's."""
        text = re.sub(r"\bcityops\.(aggregates|incidents)\b", rf"{self.database}.\1", sql)
        with ENGINE_LOCK:  # the test's ClickHouse HTTP server may be inserting meanwhile
            result = get_session(self.path).query(text, "JSONEachRow")
        return [orjson.loads(line) for line in result.bytes().splitlines() if line.strip()]

    def values(self, board: Path, **given: str) -> dict[str, str]:
        """Every variable's value: `given`, "All" where it has one, else its query's first
        row (AssertionError when that query returns nothing)."""
        values = {**dashboard_values(board), **given}
        for name, query in clickhouse_variables(board).items():
            if name in values:
                continue
            rows = self.run(expand_sql(query, values, self.window))
            assert rows, f"{board.name}: variable {name} has no values"
            values[name] = str(next(iter(rows[0].values())))
        return values

    def rows(self, board: Path, query: SqlQuery, **given: str) -> list[dict[str, Any]]:
        """The rows one panel query returns."""
        return self.run(expand_sql(query.template, self.values(board, **given), self.window))
