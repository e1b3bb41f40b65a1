"""Coordinates -> administrative area codes, from the topology's boundary polygons.

Why an index built once: a point-in-polygon test against every street polygon per event
would cost milliseconds; an STRtree narrows to the few candidates whose bounding box holds
the point, and prepared geometries make the remaining contains-tests cheap. The smallest
(deepest-level) containing area wins, and its ancestors come from the topology's hierarchy,
so a street polygon does not need its district polygon to be present (or exact).

With a ``grid`` section the topology's grid index replaces the tree: every boundary was
filled with grid cells once, so a point is one H3 call plus one dict access (≤ 5 µs, see
bench/geo_lookup.py) and the answer carries the point's cell as the ``grid`` level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from shapely import Point, STRtree

from pipeline.models import AreaLevel
from pipeline.topology import Topology
from pipeline.topology.grid import GridIndex

__all__ = ["AreaResolver"]


class AreaResolver:
    """Resolve (lat, lon) to ``{level: code}`` of the smallest containing area and above."""

    def __init__(self, topology: Topology) -> None:
        self._grid = topology.grid_index()
        features: Sequence[tuple[str, Any]] = topology.boundary_features()
        self._codes: list[str] = [code for code, _ in features]
        self._geoms: list[Any] = [geom for _, geom in features]
        for geom in self._geoms:
            shapely.prepare(geom)
        self._depth: list[int] = [topology.area(code).level.depth for code in self._codes]
        self._tree = STRtree(self._geoms) if self._geoms else None
        self._admin: dict[str, dict[AreaLevel, str]] = {
            code: topology.admin_codes(code) for code in set(self._codes)
        }

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def grid(self) -> GridIndex | None:
        """The topology's grid index (None without a grid section)."""
        return self._grid

    def smallest(self, lat: float, lon: float) -> str | None:
        """The code of the deepest area whose boundary covers the point, or None."""
        if self._grid is not None:
            codes = self._grid.locate(lat, lon)[1]
            return None if codes is None else max(codes.items(), key=lambda kv: kv[0].depth)[1]
        if self._tree is None:
            return None
        point = Point(lon, lat)
        best: str | None = None
        best_depth = -1
        for index in self._tree.query(point):
            i = int(index)
            if self._depth[i] > best_depth or (
                self._depth[i] == best_depth and best is not None and self._codes[i] < best
            ):
                if self._geoms[i].covers(point):
                    best = self._codes[i]
                    best_depth = self._depth[i]
        return best

    def resolve(self, lat: float, lon: float) -> dict[AreaLevel, str] | None:
        """``{level: code}`` for the smallest containing area and its ancestors, with the
        point's grid cell when the topology has a grid; None outside."""
        if self._grid is not None:
            cell, codes = self._grid.locate(lat, lon)
            return None if codes is None else {**codes, AreaLevel.grid: cell}
        code = self.smallest(lat, lon)
        if code is None:
            return None
        return self._admin[code]
