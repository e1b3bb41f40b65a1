"""Each area's event-time watermark and lateness, and each raw partition's progress, as an
operator sees them (`GET /watermarks`, `cityops watermarks`).

Why: a watermark that stops moving drops nothing yet, and one that runs ahead drops
readings as late; an operator needs to see which sources hold an area back (`behind`:
the active sources at the slowest event time) and which ones no longer count (`idle`:
silent for the idle timeout while their raw partition went on). Read from the
aggregation's per-district window states (:class:`~pipeline.aggregates.windows.WindowState`),
the same clock that decides lateness; nothing here changes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.aggregates.codec import from_micros
from pipeline.aggregates.windows import WindowState
from pipeline.topology import Topology

__all__ = ["MAX_LISTED", "watermarks_report"]

#: Sources listed per area and kind (behind, idle); the counts are always complete.
MAX_LISTED = 20
_US = 1_000_000


def _iso(micros: int | None) -> str | None:
    return None if micros is None else from_micros(micros).isoformat().replace("+00:00", "Z")


def _area(key: str, state: WindowState, topology: Topology) -> dict[str, Any]:
    """One area's watermark, lateness and the sources that hold it back or no longer count."""
    clock, progress = state.clock, state.progress
    active = clock.sources(progress)
    idle = sorted(s for s in clock.newest if s not in active)
    slowest = min(active.values()) if active else None
    behind = sorted(s for s, us in active.items() if us == slowest)
    area = topology.area(key) if topology.has_area(key) else None
    mark = clock.watermark(progress)
    return {
        "area": key,
        "name": None if area is None else (area.name_en or area.name),
        "watermark": _iso(mark),
        "allowed_lateness_seconds": clock.lateness_us / _US,
        "idle_timeout_seconds": clock.idle_us / _US,
        "newest": _iso(max(active.values())) if active else None,
        "active_sources": len(active),
        "behind": {"count": len(behind), "sources": behind[:MAX_LISTED], "at": _iso(slowest)},
        "idle": {"count": len(idle), "sources": idle[:MAX_LISTED]},
        "open_windows": state.open_windows,
        "late": state.late_count,
    }


def _partitions(states: list[tuple[str, WindowState]]) -> list[dict[str, Any]]:
    """Each raw partition's progress (the newest arrival normalized from it) and the
    sources whose latest reading came from it, active or idle."""
    progress: dict[str, int] = {}
    active: dict[str, int] = {}
    idle: dict[str, int] = {}
    for _, state in states:
        for partition, arrived in state.progress.items():
            progress[partition] = max(arrived, progress.get(partition, arrived))
        clock = state.clock
        for source, home in clock.home.items():
            counts = idle if clock.idle(source, state.progress) else active
            counts[home] = counts.get(home, 0) + 1
    return [
        {
            "partition": partition or "(none)",
            "progress": _iso(progress.get(partition)),
            "active_sources": active.get(partition, 0),
            "idle_sources": idle.get(partition, 0),
        }
        for partition in sorted(set(progress) | set(active) | set(idle))
    ]


def watermarks_report(
    states: Iterable[tuple[str, WindowState]], topology: Topology
) -> dict[str, Any]:
    """The JSON document of `GET /watermarks`: per area (the aggregation's key: a district,
    or the city for readings without one) and per raw partition."""
    listed = sorted(states, key=lambda item: item[0])
    agg = topology.aggregation
    return {
        "topology": topology.id,
        "allowed_lateness_seconds": agg.allowed_lateness.total_seconds(),
        "areas": [_area(key, state, topology) for key, state in listed],
        "partitions": _partitions(listed),
    }
