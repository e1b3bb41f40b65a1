"""The worker's HTTP endpoints besides /metrics (served by Faust's web server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.models import AreaLevel
from pipeline.sinks import AggregateStore, StoreError

__all__ = ["aggregates_endpoint"]


async def aggregates_endpoint(web: Any, request: Any, store: AggregateStore) -> Any:
    """GET /aggregates?area=CODE&metric=M&since=3600[&level=district]: rows as JSON.

    chDB allows one process per data directory, so while a worker runs, `cityops
    aggregates query` reads through here.
    """
    query = request.query
    try:
        area, metric = query["area"], query["metric"]
        level = AreaLevel(query.get("level", "street"))
        since_s = float(query.get("since", "3600"))
    except (KeyError, ValueError) as exc:
        return web.json({"error": f"bad query: {exc}"}, status=400)
    until = datetime.now(UTC) + timedelta(days=1)
    since = datetime.now(UTC) - timedelta(seconds=since_s)
    try:
        rows = await asyncio.to_thread(store.query, area, metric, since, until, level)
    except StoreError as exc:
        return web.json({"error": str(exc)}, status=503)
    return web.json({"rows": [row.model_dump(mode="json") for row in rows]})
