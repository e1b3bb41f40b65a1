"""Point -> areas at city scale: µs per lookup, topology load time, grid index build time.

Run: .venv/bin/python bench/geo_lookup.py [--topology topologies/shanghai.yaml] [--n 200000]

Three numbers for one topology with a ``grid`` section (the Shanghai sample: 16 real
district polygons, 215 synthetic street polygons, H3 resolution 9):
- load: ``load_topology`` (YAML, area files, sensor registry, boundaries), best of 3;
- index: filling the boundaries with grid cells (once per process), best of 3;
- lookup: ``AreaResolver.resolve(lat, lon)`` for every level (district, street, grid),
  over random points inside the city's bounding box (inside and outside the city), and
  the same through the tree of polygons (no grid) for comparison. Best of 5 rounds.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from pathlib import Path

from pipeline.ingest.geo import AreaResolver
from pipeline.topology import Topology, load_topology

ROOT = Path(__file__).parents[1]


def best_of(rounds: int, action: object) -> float:
    """Fastest wall time of ``rounds`` calls of ``action`` (seconds)."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def points(topology: Topology, n: int) -> list[tuple[float, float]]:
    """``n`` random points over the bounding box of the topology's boundaries."""
    boxes = [geom.bounds for _, geom in topology.boundary_features()]
    minx, miny = min(b[0] for b in boxes), min(b[1] for b in boxes)
    maxx, maxy = max(b[2] for b in boxes), max(b[3] for b in boxes)
    rng = random.Random(7)  # noqa: S311  # benchmark input
    return [(rng.uniform(miny, maxy), rng.uniform(minx, maxx)) for _ in range(n)]


def lookup_us(resolver: AreaResolver, sample: list[tuple[float, float]]) -> tuple[float, float]:
    """(µs per lookup, share of points inside the city)."""
    resolve = resolver.resolve
    inside = sum(resolve(lat, lon) is not None for lat, lon in sample)

    def run() -> None:
        for lat, lon in sample:
            resolve(lat, lon)

    return best_of(5, run) / len(sample) * 1e6, inside / len(sample)


def main() -> None:
    """Print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, default=ROOT / "topologies" / "shanghai.yaml")
    parser.add_argument("--n", type=int, default=200_000, help="points per round")
    args = parser.parse_args()
    load_s = best_of(3, lambda: load_topology(args.topology))
    topology = load_topology(args.topology)

    def build() -> None:
        topology._grid_index = None
        topology.grid_index()

    index_s = best_of(3, build)
    index = topology.grid_index()
    assert index is not None, f"{args.topology} has no grid section"
    sample = points(topology, args.n)
    grid_us, inside = lookup_us(AreaResolver(topology), sample)
    print(
        f"topology {topology.id}: {len(topology.areas):,} areas, {len(topology.sensors):,} sensors"
    )
    print(f"load_topology: {load_s:.2f} s (best of 3)")
    print(f"grid index: {len(index):,} cells (resolution {index.resolution}) in {index_s:.2f} s")
    print(f"lookup, grid (district+street+cell): {grid_us:.2f} µs/point ({inside:.0%} inside)")
    no_grid = topology.model_copy(update={"grid": None})
    no_grid._features = topology.boundary_features()
    tree_us, _ = lookup_us(AreaResolver(no_grid), sample[: max(1, args.n // 10)])
    print(f"lookup, polygon tree (district+street, no cell): {tree_us:.2f} µs/point")


if __name__ == "__main__":
    main()
