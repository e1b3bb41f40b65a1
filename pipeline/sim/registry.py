"""A synthetic sensor registry of any size, spread over a topology's streets by area.

Why: the sample's 400 sensors say nothing about a city at scale; a real city runs about
100,000. This spreads ``count`` sensors over every street/town in proportion to its area
(its number of grid cells), mixes their kinds as a template registry does, places each
at a point of one of its street's cells, and lets a share of them name a community of
their street (communities have no boundaries: only a sensor can name one). Deterministic
for a seed. Needs a topology with a grid and boundaries (the grid index).
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.models import AreaLevel
from pipeline.topology import Sensor, Topology
from pipeline.topology.grid import GridIndex

__all__ = ["COLUMNS", "KindMix", "kind_mix", "spread_sensors", "write_registry"]

COLUMNS = ("id", "kind", "metrics", "lat", "lon", "area")
#: (kind, id prefix, metrics, weight)
KindMix = list[tuple[str, str, tuple[str, ...], int]]
_JITTER_DEG = 0.0006  # ~60 m: a point well inside its ~350 m cell


def kind_mix(template: Iterable[Sensor]) -> KindMix:
    """Kinds, id prefixes and metrics of a template registry, weighted by their counts."""
    counts: Counter[str] = Counter()
    first: dict[str, Sensor] = {}
    for sensor in template:
        kind = sensor.kind or "sensor"
        counts[kind] += 1
        first.setdefault(kind, sensor)
    return [
        (kind, first[kind].id.split("-")[0], first[kind].metrics, counts[kind])
        for kind in sorted(counts)
    ]


def _allocate(count: int, weights: dict[str, int]) -> dict[str, int]:
    """``count`` split in proportion to ``weights`` (largest remainders; exact total)."""
    total = sum(weights.values())
    shares = {k: count * w / total for k, w in weights.items()}
    out = {k: int(v) for k, v in shares.items()}
    rest = count - sum(out.values())
    for key in sorted(shares, key=lambda k: (out[k] - shares[k], k))[:rest]:
        out[key] += 1
    return out


def spread_sensors(
    topology: Topology,
    count: int,
    *,
    seed: int = 14,
    mix: KindMix | None = None,
    community_share: float = 0.2,
    exclude: Sequence[str] = (),
) -> list[dict[str, str]]:
    """``count`` registry rows over every street, by area; ids never in ``exclude``."""
    index = topology.grid_index()
    if index is None or not len(index):
        msg = f"topology {topology.id} has no grid with boundaries to spread sensors over"
        raise ValueError(msg)
    mix = mix or kind_mix(topology.sensors)
    cells = _street_cells(index)
    per_street = _allocate(count, {code: len(c) for code, c in cells.items()})
    communities: dict[str, list[str]] = {}
    for committee in topology.areas_at(AreaLevel.community):
        communities.setdefault(committee.parent or "", []).append(committee.code)
    rng = random.Random(seed)  # noqa: S311  # synthetic sample data, not security
    taken = set(exclude)
    rows: list[dict[str, str]] = []
    for street in sorted(per_street):
        for n in range(1, per_street[street] + 1):
            kind, prefix, metrics, _ = rng.choices(mix, weights=[m[3] for m in mix])[0]
            lat, lon = _point(index, rng, cells[street], street)
            named = communities.get(street)
            area = rng.choice(named) if named and rng.random() < community_share else street
            ident = f"{prefix}-{street}-{n:05d}"
            if ident in taken:
                continue
            rows.append(
                {
                    "id": ident, "kind": kind, "metrics": " ".join(metrics),
                    "lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "area": area,
                }
            )  # fmt: skip
    return rows


def _street_cells(index: GridIndex) -> dict[str, list[str]]:
    """Each street's cells (sorted, so a seed gives the same sensors)."""
    out: dict[str, list[str]] = {}
    for cell in index.all_cells():
        codes = index.codes(cell)
        street = None if codes is None else codes.get(AreaLevel.street)
        if street is not None:
            out.setdefault(street, []).append(cell)
    return out


def _point(
    index: GridIndex, rng: random.Random, cells: list[str], street: str
) -> tuple[float, float]:
    """A point inside a random cell of ``street`` (the cell's centre, jittered)."""
    cell = rng.choice(cells)
    lat, lon = index.centre(cell)
    for _ in range(5):
        jittered = (
            lat + rng.uniform(-_JITTER_DEG, _JITTER_DEG),
            lon + rng.uniform(-_JITTER_DEG, _JITTER_DEG),
        )
        codes = index.locate(round(jittered[0], 6), round(jittered[1], 6))[1]
        if codes is not None and codes.get(AreaLevel.street) == street:
            return jittered
    return lat, lon


def write_registry(rows: Iterable[dict[str, str]], path: Path) -> int:
    """Write registry rows as a sensor CSV; how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            written += 1
    return written
