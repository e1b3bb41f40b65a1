"""`GET /incidents` and `GET /incidents/{id}`: the current state, without replaying a topic.

Why from the lifecycle table: it holds every incident's latest state (the incident topics
are compacted snapshots, but reading one means reading it all). A worker serves the
incidents of the partitions it owns: with one worker that is every incident; with several,
ask each (an id the worker does not hold is a 404 that says so).

`/incidents?area=&state=&severity=&limit=&after=`: newest opened first; `area` is any
area code (an incident matches when it lies in that area), `state` and `severity` take a
value or a comma-separated list; `limit` (1..500, default 50) and the `next` cursor of a
page (`after=`) page through the rest. A bad parameter is a 400 with the reason.

While the worker rebalances or reads its changelogs, both answer 503 (with Retry-After):
the lifecycle table then holds only part of the incidents, and a partial list (or a 404
for an incident that exists) would be taken for the truth.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import faust

from pipeline.engine.worker.health import recovering
from pipeline.engine.worker.wiring import Wiring
from pipeline.models import Incident, IncidentState, Severity
from pipeline.topology import Topology

__all__ = ["IncidentQuery", "register"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_PARAMETERS = frozenset({"area", "state", "severity", "limit", "after"})
_E = TypeVar("_E", IncidentState, Severity)

#: Seconds a client is asked to wait while the worker recovers (Retry-After).
RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """One validated `/incidents` query."""

    area: str | None = None
    states: frozenset[IncidentState] = frozenset()
    severities: frozenset[Severity] = frozenset()
    limit: int = DEFAULT_LIMIT
    after: tuple[int, str] | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], topology: Topology) -> IncidentQuery:
        """The query of `params`; `ValueError` naming the bad parameter."""
        unknown = sorted(set(params) - _PARAMETERS)
        if unknown:
            msg = f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(_PARAMETERS))})"
            raise ValueError(msg)
        area = params.get("area") or None
        if area is not None and not topology.has_area(area):
            msg = f"area: unknown area {area[:40]!r}"
            raise ValueError(msg)
        return cls(
            area=area,
            states=_enum_set(IncidentState, params.get("state"), "state"),
            severities=_enum_set(Severity, params.get("severity"), "severity"),
            limit=_limit(params.get("limit")),
            after=None if not params.get("after") else _cursor(params["after"]),
        )

    def matches(self, incident: Incident, city: str) -> bool:
        """Whether `incident` is one this query asks for."""
        if self.states and incident.state not in self.states:
            return False
        if self.severities and incident.severity not in self.severities:
            return False
        if self.area is None or self.area == city:
            return True
        codes = incident.areas
        return self.area in (codes.district, codes.street, codes.grid, codes.community)

    def page(self, incidents: Iterable[Incident], city: str) -> dict[str, Any]:
        """The matching incidents after the cursor, newest opened first, one page."""
        found = sorted((_order(i), i) for i in incidents if self.matches(i, city))
        rest = [incident for key, incident in found if self.after is None or key > self.after]
        shown = rest[: self.limit]
        more = len(rest) > len(shown)
        return {
            "incidents": [incident.model_dump(mode="json") for incident in shown],
            "total": len(found),
            "next": _encode(_order(shown[-1])) if more and shown else None,
        }


def _order(incident: Incident) -> tuple[int, str]:
    """Sort key: newest opened first, then by id."""
    micros = round(incident.opened_at.timestamp() * 1_000_000)
    return -micros, incident.incident_id


def _encode(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def _cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text[:400] + "=" * (-len(text) % 4)).decode()
        micros, incident_id = raw.split(":", 1)
        return int(micros), incident_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        msg = "after: not a cursor this API gave (use the `next` of a page)"
        raise ValueError(msg) from exc


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        msg = f"limit: must be a whole number from 1 to {MAX_LIMIT}"
        raise ValueError(msg)
    return int(text)


def _enum_set(kind: type[_E], text: str | None, name: str) -> frozenset[_E]:
    if not text:
        return frozenset()
    values: set[_E] = set()
    for part in text.split(","):
        try:
            values.add(kind(part.strip()))
        except ValueError as exc:
            known = ", ".join(str(member) for member in kind)
            msg = f"{name}: {part.strip()[:40]!r} is not one of {known}"
            raise ValueError(msg) from exc
    return frozenset(values)


def unavailable(app: Any) -> dict[str, Any] | None:
    """The 503 body while `app` rebalances or recovers its tables, else None."""
    if not recovering(app):
        return None
    return {
        "error": "the worker is rebalancing or reading its changelogs; its incidents are "
        "incomplete until it is ready (/readyz)",
        "retry_after_seconds": RETRY_AFTER_SECONDS,
    }


def register(app: faust.App, wiring: Wiring) -> None:
    """Serve `/incidents` and `/incidents/{incident_id}` from the lifecycle table."""
    lifecycle = wiring.pipeline.lifecycle
    city = wiring.topology.city.code

    @app.page("/incidents")
    async def incidents_page(web: Any, request: Any) -> Any:
        try:
            query = IncidentQuery.parse(dict(request.query), wiring.topology)
        except ValueError as exc:
            return web.json({"error": f"bad query: {exc}"}, status=400)
        async with wiring.locks["lifecycle"]:  # never half a batch
            busy = unavailable(app)
            if busy is not None:
                return web.json(busy, status=503, headers=_retry_after())
            return web.json(query.page(lifecycle.incidents(), city))

    @app.page("/incidents/{incident_id}")
    async def incident_page(web: Any, request: Any, incident_id: str) -> Any:
        async with wiring.locks["lifecycle"]:
            busy = unavailable(app)
            if busy is not None:
                return web.json(busy, status=503, headers=_retry_after())
            incident = lifecycle.incident(incident_id)
        if incident is None:
            detail = f"no incident {incident_id[:200]!r} on this worker (its partitions)"
            return web.json({"error": detail}, status=404)
        return web.json({"incident": incident.model_dump(mode="json")})


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}
