"""Grafana dashboards as code: `python -m deploy.grafana.generate [--runbook-base-url URL]
[--out DIR] [--check]`.

Why code: every panel query lives in one reviewed place, the committed JSON under
`dashboards/` is regenerated from it (a unit test fails when it is stale), and the
query lister (`deploy/grafana/queries.py`) runs each PromQL expression against a real
Prometheus and each ClickHouse query against the embedded engine. Built with
grafana-foundation-sdk's typed builders; the shared pieces are in `panels.py`, one module
per dashboard.

Runbook links are absolute: `--runbook-base-url`, else `$CITYOPS_RUNBOOK_BASE_URL`, else
the committed default (`deploy/runbooks.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from deploy.generated import generator_main
from deploy.grafana.city_operations import city_operations
from deploy.grafana.incidents import incidents
from deploy.grafana.pipeline_health import pipeline_health
from deploy.runbooks import DEFAULT_BASE_URL

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

#: File name -> the dashboard, built for a runbook base URL.
DASHBOARDS: dict[str, Callable[[str], dash.Dashboard]] = {
    "pipeline-health.json": pipeline_health,
    "city-operations.json": city_operations,
    "incidents.json": incidents,
}


def render(board: dash.Dashboard) -> str:
    """Deterministic JSON text (sorted keys, trailing newline) for a stable diff."""
    return (
        json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )


def rendered(runbooks: str = DEFAULT_BASE_URL) -> dict[str, str]:
    """File name -> JSON text of every dashboard (the committed files: the default base)."""
    return {name: render(make(runbooks)) for name, make in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    return generator_main(
        argv,
        description=(__doc__ or "").splitlines()[0],
        render=rendered,
        out=DASHBOARD_DIR,
        command="python -m deploy.grafana.generate",
    )


if __name__ == "__main__":
    raise SystemExit(main())
