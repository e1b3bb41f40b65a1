"""The ``grid`` section: the unit grid, computed (H3 cells), and the point -> area index.

Why computed, not listed: a city's unit grid has tens of thousands of cells (Shanghai's
own 网格: 40,625; H3 resolution 9, ~0.1 km² a cell: ~100,000 over its land), too many to
list and never needed as a list. A cell is one H3 call away from any coordinate, so every
reading, report and incident carries its cell in ``areas.grid`` and aggregates are kept
per cell (the heat map). The grid is *not* a topic level: nobody subscribes to one cell.

With a grid the topology's boundaries become an index: each boundary polygon is filled
with the grid's cells once (a cell belongs to the polygon that holds its centre, the
deepest area winning), so placing a point is one H3 call plus one dict access instead of
point-in-polygon tests. The price is that a boundary is followed to within one cell
(~170 m at resolution 9).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import h3
from pydantic import Field

from pipeline.models import AreaLevel
from pipeline.topology.base import Frozen

__all__ = ["Grid", "GridIndex", "cell_of"]

#: Admin codes of an area and every level above it (shared between the cells of one area).
Codes = dict[AreaLevel, str]


class Grid(Frozen):
    """``grid: {kind: h3, resolution: 9}``: H3 cells of one resolution (0 coarse .. 15)."""

    kind: Literal["h3"] = "h3"
    resolution: Annotated[int, Field(ge=0, le=15)] = 9


def cell_of(lat: float, lon: float, resolution: int) -> str:
    """The H3 cell (hex string) holding the point."""
    return str(h3.latlng_to_cell(lat, lon, resolution))


class GridIndex:
    """Cell -> admin codes of the deepest area whose boundary holds the cell's centre."""

    def __init__(
        self,
        resolution: int,
        features: Iterable[tuple[str, Any]],
        admin_codes: Callable[[str], Codes],
        depth: Callable[[str], int],
    ) -> None:
        self.resolution = resolution
        self._latlng_to_cell = h3.latlng_to_cell
        owner = _owners(resolution, list(features), admin_codes, depth)
        shared: dict[str, Codes] = {}
        self._cells: dict[str, Codes] = {}
        for cell, code in owner.items():
            codes = shared.get(code)
            if codes is None:
                codes = shared[code] = admin_codes(code)
            self._cells[cell] = codes
        self._areas = len(shared)

    def __len__(self) -> int:
        """How many cells lie inside the boundaries."""
        return len(self._cells)

    @property
    def areas(self) -> int:
        """How many areas own at least one cell."""
        return self._areas

    def cell(self, lat: float, lon: float) -> str:
        """The grid cell of a point (inside the city or not)."""
        return str(self._latlng_to_cell(lat, lon, self.resolution))

    def locate(self, lat: float, lon: float) -> tuple[str, Codes | None]:
        """``(cell, admin codes)`` of a point; codes None outside every boundary.

        One H3 call and one dict access: the hot path of placing a located event."""
        cell = self._latlng_to_cell(lat, lon, self.resolution)
        return cell, self._cells.get(cell)

    def codes(self, cell: str) -> Codes | None:
        """The admin codes of a cell, or None outside every boundary."""
        return self._cells.get(cell)

    def all_cells(self) -> list[str]:
        """Every cell inside the boundaries, sorted."""
        return sorted(self._cells)

    @staticmethod
    def centre(cell: str) -> tuple[float, float]:
        """``(lat, lon)`` of a cell's centre."""
        lat, lon = h3.cell_to_latlng(cell)
        return float(lat), float(lon)

    def cells_of(self, code: str) -> list[str]:
        """Every cell inside area ``code`` (at its own level or below), sorted."""
        return sorted(cell for cell, codes in self._cells.items() if code in codes.values())


def _owners(
    resolution: int,
    features: list[tuple[str, Any]],
    admin_codes: Callable[[str], Codes],
    depth: Callable[[str], int],
) -> dict[str, str]:
    """Cell -> code of the deepest area whose boundary holds the cell's centre.

    Only the outermost boundaries (no ancestor has one: the districts) are filled with
    cells by H3; a deeper boundary (a street) is matched against those cells' centres in
    one vectorized point-in-polygon query. Filling the 215 detailed street outlines with
    H3 as well took four times as long. So a deeper area's cells are those of its
    ancestors' boundaries: the outer boundaries are the jurisdiction.
    """
    import numpy as np
    import shapely

    with_boundary = {code for code, _ in features}
    outer: list[tuple[str, Any]] = []
    inner: list[tuple[str, Any]] = []
    for feature in features:
        ancestors = set(admin_codes(feature[0]).values()) - {feature[0]}
        (inner if ancestors & with_boundary else outer).append(feature)
    owner: dict[str, str] = {}
    for code, geom in sorted(outer, key=lambda f: (-depth(f[0]), f[0])):
        shape = h3.geo_to_h3shape(geom.__geo_interface__)
        for cell in h3.h3shape_to_cells(shape, resolution):
            owner.setdefault(cell, code)
    if not inner or not owner:
        return owner
    cells = list(owner)
    centres = np.array([h3.cell_to_latlng(cell) for cell in cells])
    points = shapely.points(centres[:, 1], centres[:, 0])
    ranks = [(-depth(code), code) for code, _ in inner]
    best: dict[int, tuple[int, str]] = {}
    # A tree of the points queried with each polygon: the polygon side is prepared once.
    hits = shapely.STRtree(points).query([geom for _, geom in inner], predicate="contains")
    for g, p in zip(*hits.tolist(), strict=True):
        rank = ranks[g]
        if p not in best or rank < best[p]:
            best[p] = rank
    for p, (_, code) in best.items():
        owner[cells[p]] = code
    return owner
