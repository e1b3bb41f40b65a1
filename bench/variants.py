"""Temporary topology files derived from a real one (for memory and latency runs).

Why files: the worker reads its topology from a path, so a variant is a YAML file in the
run's scratch directory with every relative path (boundaries, sensor file) made absolute.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from pipeline.sim.registry import spread_sensors, write_registry
from pipeline.topology import load_topology


def load_absolute(source: Path) -> dict[str, Any]:
    """The topology's YAML document with every file it names (boundaries, sensor file,
    area files) as an absolute path, so a copy anywhere reads the same files."""
    data = yaml.safe_load(source.read_text())
    assert isinstance(data, dict)
    base = source.parent.resolve()
    boundaries = data.get("boundaries")
    if isinstance(boundaries, str):
        data["boundaries"] = str(base / boundaries)
    elif isinstance(boundaries, list):
        data["boundaries"] = [str(base / path) for path in boundaries]
    sensors = data.get("sensors")
    if isinstance(sensors, dict) and "file" in sensors:
        data["sensors"] = {"file": str(base / sensors["file"])}
    for item in data.get("areas") or []:
        if isinstance(item, dict) and "file" in item:
            item["file"] = str(base / item["file"])
    return data


def _write(data: dict[str, Any], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return target


def with_lateness(source: Path, target: Path, lateness: str) -> Path:
    """The topology with detection's ``allowed_lateness`` replaced (e.g. "0s")."""
    data = load_absolute(source)
    data["detection"] = {**data.get("detection", {}), "allowed_lateness": lateness}
    return _write(data, target)


def with_generated_sensors(source: Path, target: Path, count: int, *, seed: int = 14) -> Path:
    """The topology with ``count`` sensors: its own plus synthetic ones spread over every
    street by area, kinds mixed as in its own (what ``topologies/shanghai/full_sample.py``
    writes as the full-city sample: 26,000 of 100,000 land in Chongming)."""
    data = load_absolute(source)
    sensors_file = Path(data["sensors"]["file"])
    with sensors_file.open(newline="") as handle:
        own = list(csv.DictReader(handle))
    extra = spread_sensors(
        load_topology(source), count - len(own), seed=seed, exclude=[row["id"] for row in own]
    )
    out = target.with_suffix(".sensors.csv")
    write_registry([*own, *extra], out)
    data["sensors"] = {"file": str(out)}
    return _write(data, target)
