"""Generate SYNTHETIC stand-in polygons for Shanghai's 215 streets and towns.

Why synthetic: no package registry offers street/town boundaries (PyPI, npm, Maven and
Debian were searched), so each district's real boundary (boundaries/shanghai-districts.geojson)
is cut into as many pieces as it has streets/towns (streets.csv), each piece a union of H3
cells of the grid resolution. The pieces are not the streets' real shapes; every feature
says so (``properties.synthetic: true``) and a real deployment supplies its own GeoJSON.

Method (seeded, balanced, contiguous where the land is):
1. The district's cells: H3 cells at ``RESOLUTION`` whose centre lies in its polygon (the
   same rule the topology's index uses, so the pieces tile exactly the district's cells).
2. One seed cell per street: its approximate centroid where one is known
   (``topologies/generate_sensors.py``), the others spread k-means++ style with a seeded
   random generator (the next seed drawn with probability proportional to the squared
   distance to the nearest seed).
3. Balanced region growing: the smallest region takes the next unclaimed neighbour of its
   breadth-first frontier, until every cell is claimed; land a region cannot reach (an
   island) goes to the smallest region and grows from there.
4. Streets get the regions in code order; polygons are the regions' cell outlines.

Run: ``python topologies/shanghai/partition_streets.py`` (deterministic: same input and
seed, same file).
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import random
import sys
from collections import deque
from pathlib import Path

import h3
import shapely
import shapely.geometry

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # generate_sensors: the approximate centroids

from generate_sensors import STREET_CENTROIDS  # noqa: E402

DISTRICTS = HERE.parent / "boundaries" / "shanghai-districts.geojson"
STREETS = HERE / "streets.csv"
OUT = HERE / "streets-synthetic.geojson"
RESOLUTION = 9
SIMPLIFY_DEG = 0.001  # ~100 m: a res-9 cell's centre is ~150 m from its edges
SEED = 20261202


def _xy(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return lon * math.cos(math.radians(31.2)), lat


def _seeds(cells: list[str], known: list[str | None], rng: random.Random) -> list[str]:
    """One seed cell per street: the known centroid's cell, else k-means++ spread."""
    seeds = [c for c in known if c is not None]
    if not seeds:
        seeds.append(rng.choice(cells))
    points = {c: _xy(c) for c in cells}
    while len(seeds) < len(known):
        weights = []
        for cell in cells:
            x, y = points[cell]
            weights.append(min((x - points[s][0]) ** 2 + (y - points[s][1]) ** 2 for s in seeds))
        seeds.append(rng.choices(cells, weights=weights)[0])
    # Known centroids keep their street; drawn seeds fill the others in code order.
    drawn = iter(seeds[sum(c is not None for c in known) :])
    return [c if c is not None else next(drawn) for c in known]


def partition(cells: list[str], seeds: list[str]) -> list[list[str]]:
    """Grow one region per seed, the smallest first, until every cell is claimed."""
    inside = set(cells)
    owner: dict[str, int] = {}
    regions: list[list[str]] = [[] for _ in seeds]
    frontiers: list[deque[str]] = [deque() for _ in seeds]
    for i, seed in enumerate(seeds):
        if seed not in owner:
            owner[seed] = i
            regions[i].append(seed)
            frontiers[i].append(seed)
    heap = [(len(r), i) for i, r in enumerate(regions)]
    heapq.heapify(heap)
    while len(owner) < len(inside):
        if not heap:  # nothing can grow: an island; the smallest region takes it
            orphan = min(c for c in cells if c not in owner)
            smallest = min(range(len(regions)), key=lambda i: (len(regions[i]), i))
            owner[orphan] = smallest
            regions[smallest].append(orphan)
            frontiers[smallest].append(orphan)
            heap = [(len(r), i) for i, r in enumerate(regions) if frontiers[i]]
            heapq.heapify(heap)
            continue
        _, i = heapq.heappop(heap)
        claimed = _claim(frontiers[i], inside, owner, i)
        if claimed is not None:
            regions[i].append(claimed)
            heapq.heappush(heap, (len(regions[i]), i))
    return regions


def _claim(frontier: deque[str], inside: set[str], owner: dict[str, int], i: int) -> str | None:
    """The next unclaimed neighbour on a region's frontier (None: the region is enclosed)."""
    while frontier:
        for neighbour in sorted(h3.grid_ring(frontier[0], 1)):
            if neighbour in inside and neighbour not in owner:
                owner[neighbour] = i
                frontier.append(neighbour)
                return neighbour
        frontier.popleft()
    return None


def _geometry(cells: list[str]) -> dict[str, object]:
    """The cells' outline as a GeoJSON (Multi)Polygon, simplified within ``SIMPLIFY_DEG``
    (less than the ~150 m from a cell's centre to its edge, so every centre stays on its
    side: the index built from these polygons is the partition itself, as main checks),
    coordinates rounded to 5 places (~1 m)."""
    outline = shapely.geometry.shape(h3.cells_to_h3shape(cells).__geo_interface__)
    shape = outline.simplify(SIMPLIFY_DEG).__geo_interface__

    def rounded(ring: object) -> object:
        if isinstance(ring, tuple | list) and ring and isinstance(ring[0], float):
            return [round(ring[0], 5), round(ring[1], 5)]
        return [rounded(part) for part in ring]  # type: ignore[attr-defined]

    return {"type": shape["type"], "coordinates": rounded(shape["coordinates"])}


def _check_centres(geometry: dict[str, object], region: list[str], cells: list[str]) -> None:
    """The simplified polygon holds exactly its region's centres among the district's."""
    polygon = shapely.geometry.shape(geometry)
    shapely.prepare(polygon)
    mine = set(region)
    for cell in cells:
        lat, lon = h3.cell_to_latlng(cell)
        if polygon.contains(shapely.Point(lon, lat)) != (cell in mine):
            msg = f"simplification moved the centre of {cell} across a street border"
            raise SystemExit(msg)


def main() -> int:
    """Write streets-synthetic.geojson."""
    with STREETS.open(encoding="utf-8", newline="") as handle:
        streets = list(csv.DictReader(handle))
    districts = json.loads(DISTRICTS.read_text(encoding="utf-8"))["features"]
    features = []
    for district in sorted(districts, key=lambda f: f["properties"]["code"]):
        code = district["properties"]["code"]
        mine = sorted((s for s in streets if s["parent"] == code), key=lambda s: s["code"])
        cells = sorted(h3.h3shape_to_cells(h3.geo_to_h3shape(district["geometry"]), RESOLUTION))
        inside = set(cells)
        known = []
        for street in mine:
            centroid = STREET_CENTROIDS.get(street["code"])
            cell = None if centroid is None else h3.latlng_to_cell(*centroid, RESOLUTION)
            known.append(cell if cell in inside else None)
        rng = random.Random(f"{SEED}-{code}")  # noqa: S311  # synthetic data, not security
        regions = partition(cells, _seeds(cells, known, rng))
        for street, region in zip(mine, regions, strict=True):
            props = {"code": street["code"], "name": street["name"], "synthetic": True}
            props["cells"] = len(region)
            geometry = _geometry(region)
            _check_centres(geometry, region, cells)
            features.append({"type": "Feature", "properties": props, "geometry": geometry})
        sizes = sorted(len(r) for r in regions)
        print(f"{code}: {len(cells)} cells -> {len(mine)} streets ({sizes[0]}..{sizes[-1]} each)")
    collection = {
        "type": "FeatureCollection",
        "name": "shanghai-streets-synthetic",
        "description": (
            "SYNTHETIC stand-in street/town polygons: each district's H3 cells (resolution "
            f"{RESOLUTION}) partitioned by topologies/shanghai/partition_streets.py. Not real "
            "boundaries."
        ),
        "features": features,
    }
    OUT.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.name}: {len(features)} synthetic street/town polygons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
