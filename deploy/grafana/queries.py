"""Every query the dashboards and alert rules run, ready to send: PromQL to Prometheus,
SQL to ClickHouse.

Why: a dashboard query that names a metric (or a table, or a level) wrongly shows "No
data" forever and nobody notices. Tests run each PromQL expression listed here against a
real Prometheus scraping a real worker, and each ClickHouse query against the embedded
engine holding rows, and require data. Grafana template variables are replaced by
concrete values (`$__rate_interval` -> `1m`, a multi-value `$district` with "All" -> its
`allValue`); the ClickHouse plugin's macros (`$__timeFilter(col)`, `$__timeInterval(col)`)
are expanded as the plugin documents them, and a ClickHouse query variable takes the
first value its own query returns.

Alert expressions are conditions: they are listed with `expect_data=False` (they must
evaluate, and return nothing while all is well); dashboard queries and variable queries
have `expect_data=True`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

DEPLOY_DIR = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = DEPLOY_DIR / "grafana" / "dashboards"
ALERTS_FILE = DEPLOY_DIR / "prometheus" / "alerts.yml"

#: The datasource type of ClickHouse targets and variables.
CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"

#: Grafana's built-in interval variables and the values tests give them.
DEFAULT_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


class QueryError(ValueError):
    """A dashboard or rule references something the lister cannot resolve."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    source: str  # "pipeline-health.json: Consumer lag per partition [A]" or "alerts.yml: ..."
    expr: str  # concrete PromQL, variables substituted
    template: str  # as written in the dashboard or rule
    expect_data: bool


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace `$var`, `${var}`, `${var:fmt}` and `[[var]]`; unknown names raise QueryError."""

    def repl(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g is not None)
        if name not in values:
            msg = f"unknown template variable ${name} in {template!r}"
            raise QueryError(msg)
        return values[name]

    return _VARIABLE.sub(repl, template)


def _variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Concrete values for a dashboard's own variables: "All" as Grafana would send it.

    A query variable without "All" has no value here: its query must run first (a
    ClickHouse variable, see `clickhouse_variables`); using it unresolved is an error."""
    values: dict[str, str] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        name = var["name"]
        if var.get("type") == "datasource":
            values[name] = f"{name}-uid"
        elif var.get("includeAll") and var.get("allValue"):
            values[name] = var["allValue"]
        elif var.get("type") == "custom":
            values[name] = str(var.get("query", "")).split(",")[0].strip()
    return values


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _is_prometheus(datasource: Any) -> bool:
    return isinstance(datasource, dict) and datasource.get("type") == "prometheus"


def dashboard_queries(path: Path, builtins: Mapping[str, str] = DEFAULT_BUILTINS) -> list[Query]:
    """Panel targets and query variables of one dashboard JSON file that use Prometheus."""
    board = json.loads(path.read_text(encoding="utf-8"))
    values = {**_variable_values(board), **builtins}
    found: list[Query] = []
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query" or not _is_prometheus(var.get("datasource")):
            continue
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        match = _LABEL_VALUES.match(query)
        template = f"count by ({match['label']}) ({match['metric']})" if match else query
        found.append(
            Query(f"{path.name}: variable {var['name']}", substitute(template, values), query, True)
        )
    for panel in _panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            datasource = target.get("datasource", panel.get("datasource"))
            if "expr" not in target or not _is_prometheus(datasource):
                continue
            source = f"{path.name}: {panel.get('title', '?')} [{target.get('refId', '?')}]"
            found.append(Query(source, substitute(target["expr"], values), target["expr"], True))
    return found


def rule_queries(path: Path = ALERTS_FILE) -> list[Query]:
    """Alert expressions (expect_data=False) and recording rules (expect_data=True)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: list[Query] = []
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            expr = str(rule["expr"]).strip()
            if "alert" in rule:
                found.append(Query(f"{path.name}: alert {rule['alert']}", expr, expr, False))
            else:
                found.append(Query(f"{path.name}: record {rule['record']}", expr, expr, True))
    return found


def all_queries(
    *,
    dashboard_dir: Path = DASHBOARD_DIR,
    alerts_file: Path = ALERTS_FILE,
    builtins: Mapping[str, str] = DEFAULT_BUILTINS,
) -> list[Query]:
    """Every Prometheus expression of every committed dashboard and rule file."""
    found: list[Query] = []
    for path in sorted(dashboard_dir.glob("*.json")):
        found.extend(dashboard_queries(path, builtins))
    found.extend(rule_queries(alerts_file))
    return found


# -- ClickHouse (grafana-clickhouse-datasource) ---------------------------------------------


@dataclass(frozen=True)
class SqlQuery:
    """One ClickHouse query of a dashboard, as written (macros and variables unexpanded)."""

    source: str  # "incidents.json: Incident map [A]" or "incidents.json: variable street"
    template: str
    time_series: bool = False  # the panel asks for the time-series format


@dataclass(frozen=True)
class TimeRange:
    """The time range and interval the ClickHouse macros expand to."""

    start: datetime
    end: datetime
    interval_seconds: int = 60


_MACROS = {
    "timeFilter": "{col} >= toDateTime({start}) AND {col} <= toDateTime({end})",
    "timeFilter_ms": (
        "{col} >= fromUnixTimestamp64Milli({start_ms})"
        " AND {col} <= fromUnixTimestamp64Milli({end_ms})"
    ),
    "timeInterval": "toStartOfInterval(toDateTime({col}), INTERVAL {interval} second)",
    "timeInterval_ms": "toStartOfInterval(toDateTime64({col}, 3), INTERVAL {interval} second)",
}
_MACRO = re.compile(r"\$__(timeFilter_ms|timeFilter|timeInterval_ms|timeInterval)\(([^)]*)\)")
_PLAIN_MACROS = {
    "$__fromTime": "toDateTime({start})",
    "$__toTime": "toDateTime({end})",
    "$__interval_s": "{interval}",
}


def expand_sql(template: str, values: Mapping[str, str], window: TimeRange) -> str:
    """The SQL the datasource plugin sends: its macros expanded for `window` (as the
    plugin documents them), then the dashboard's variables substituted."""
    numbers = {
        "start": int(window.start.timestamp()),
        "end": int(window.end.timestamp()),
        "start_ms": int(window.start.timestamp() * 1000),
        "end_ms": int(window.end.timestamp() * 1000),
        "interval": window.interval_seconds,
    }
    text = _MACRO.sub(
        lambda m: _MACROS[m.group(1)].format(col=m.group(2).strip(), **numbers), template
    )
    for macro, expansion in _PLAIN_MACROS.items():
        text = text.replace(macro, expansion.format(**numbers))
    return substitute(text, values)


def _is_clickhouse(datasource: Any) -> bool:
    return isinstance(datasource, dict) and datasource.get("type") == CLICKHOUSE_TYPE


def clickhouse_variables(path: Path) -> dict[str, str]:
    """Name -> SQL of the dashboard's ClickHouse query variables, in dashboard order."""
    board = json.loads(path.read_text(encoding="utf-8"))
    return {
        var["name"]: var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        for var in board.get("templating", {}).get("list", [])
        if var.get("type") == "query" and _is_clickhouse(var.get("datasource"))
    }


def clickhouse_queries(path: Path) -> list[SqlQuery]:
    """The raw-SQL targets of every ClickHouse panel of one dashboard JSON file."""
    board = json.loads(path.read_text(encoding="utf-8"))
    found: list[SqlQuery] = []
    for panel in _panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            datasource = target.get("datasource", panel.get("datasource"))
            if "rawSql" not in target or not _is_clickhouse(datasource):
                continue
            source = f"{path.name}: {panel.get('title', '?')} [{target.get('refId', '?')}]"
            found.append(SqlQuery(source, target["rawSql"], target.get("format") == 0))
    return found


def dashboard_values(path: Path) -> dict[str, str]:
    """The values this lister gives a dashboard's variables without running a query."""
    return _variable_values(json.loads(path.read_text(encoding="utf-8")))


def main() -> None:
    """Print the expressions, one per line after their source (for docs and debugging)."""
    for query in all_queries():
        print(f"# {query.source}{'' if query.expect_data else ' (condition)'}\n{query.expr}")


if __name__ == "__main__":
    main()
