"""Shared helpers for the simulator tests: fixed start times and views of a stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.sim.events import SimEvent
from pipeline.topology import Topology

# 00:00 in Shanghai (UTC+8): a whole local day from here.
MIDNIGHT_LOCAL = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
TEN_AM_LOCAL = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def subset(topology: Topology, kind: str, count: int) -> Topology:
    """The topology with only the first ``count`` sensors of one kind (keeps tests small)."""
    sensors = tuple(s for s in topology.sensors if s.kind == kind)[:count]
    return topology.model_copy(update={"sensors": sensors})


def valid_docs(events: list[SimEvent]) -> list[dict[str, Any]]:
    """The JSON documents of the events that carry no injected fault."""
    return [orjson.loads(e.value) for e in events if e.fault is None]


def event_time(doc: dict[str, Any], field: str = "observed_at") -> datetime:
    """A reading's (or, with ``field``, a report's) time."""
    return datetime.fromisoformat(doc[field])


def local_hour(doc: dict[str, Any]) -> int:
    """The hour of a reading in Shanghai time."""
    return (event_time(doc) + timedelta(hours=8)).hour  # Asia/Shanghai, no DST
