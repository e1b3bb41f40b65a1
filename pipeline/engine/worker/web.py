"""The worker's HTTP endpoints besides /metrics (served by Faust's web server).

Every parameter is checked before use: a bad one is a 400 with the reason, never a 500
(``since=1e12`` once overflowed ``timedelta`` and ``since=nan`` compared false with
everything).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.engine.stages import AggregateStage
from pipeline.engine.watermarks import watermarks_report
from pipeline.models import AreaLevel
from pipeline.sinks import AggregateStore, StoreError

__all__ = [
    "MAX_SINCE", "AggregatesQuery", "BadQuery", "aggregates_endpoint", "watermarks_endpoint",
]  # fmt: skip

#: the furthest back ``since`` may reach (ten years, in seconds)
MAX_SINCE = 10 * 366 * 86_400
_MAX_TEXT = 200


class BadQuery(ValueError):
    """A query parameter is missing or wrong; the message names it and says why."""


def _text(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or not value.strip():
        msg = f"{name} is required"
        raise BadQuery(msg)
    if len(value) > _MAX_TEXT:
        msg = f"{name} is longer than {_MAX_TEXT} characters"
        raise BadQuery(msg)
    return value


def _since(text: str) -> float:
    shown = text if len(text) <= 20 else text[:17] + "..."
    try:
        seconds = float(text)
    except ValueError:
        msg = f"since must be a number of seconds, got {shown!r}"
        raise BadQuery(msg) from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SINCE:
        msg = f"since must be a number of seconds in (0, {MAX_SINCE}], got {shown!r}"
        raise BadQuery(msg)
    return seconds


@dataclass(frozen=True, slots=True)
class AggregatesQuery:
    """``GET /aggregates?area=CODE&metric=M&since=3600[&level=street]``, validated."""

    area: str
    metric: str
    level: AreaLevel
    since: timedelta

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AggregatesQuery:
        """The query of a request (``BadQuery`` naming the first bad parameter)."""
        area, metric = _text(params, "area"), _text(params, "metric")
        level_text = params.get("level", "street")
        try:
            level = AreaLevel(level_text)
        except ValueError:
            known = ", ".join(lv.value for lv in AreaLevel)
            msg = f"level must be one of {known}, got {level_text[:20]!r}"
            raise BadQuery(msg) from None
        seconds = _since(params.get("since", "3600"))
        return cls(area, metric, level, timedelta(seconds=seconds))


async def aggregates_endpoint(web: Any, request: Any, store: AggregateStore) -> Any:
    """GET /aggregates?area=CODE&metric=M&since=3600[&level=district]: rows as JSON.

    chDB allows one process per data directory, so while a worker runs, `cityops
    aggregates query` reads through here.
    """
    try:
        query = AggregatesQuery.parse(request.query)
    except BadQuery as exc:
        return web.json({"error": f"bad query: {exc}"}, status=400)
    now = datetime.now(UTC)
    try:
        rows = await asyncio.to_thread(
            store.query, query.area, query.metric, now - query.since, now + timedelta(days=1),
            query.level,
        )  # fmt: skip
    except StoreError as exc:
        return web.json({"error": str(exc)}, status=503)
    return web.json({"rows": [row.model_dump(mode="json") for row in rows]})


async def watermarks_endpoint(web: Any, stage: AggregateStage, lock: asyncio.Lock) -> Any:
    """GET /watermarks: each area's watermark, lateness, sources behind and idle, and each
    raw partition's progress (`pipeline.engine.watermarks`), for this worker's partitions.
    Read between two analyze batches, never halfway through one."""
    async with lock:
        peek = stage.states.peek
        states = [(key, state) for key in stage.states.keys() if (state := peek(key)) is not None]
        return web.json(watermarks_report(states, stage.topology))
