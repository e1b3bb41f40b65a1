"""Worker peak memory with a generated registry of many sensors.

Why the full-city spread: aggregation keeps each source's clock per district, so the
largest district (Chongming, a quarter of the sensors by area) decides the largest state.
Why one reading per sensor: detection and window state grow with the sensors that
report, so the load touches as many distinct sensors as the window allows (in registry
order), on top of the registry itself (topology, area lookups, simulator-free).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from bench import kafkautil, throughput, variants
from bench.latency import Raw
from pipeline.topology import Topology, load_topology


def one_per_sensor(topology: Topology) -> list[Raw]:
    """One in-range reading of each sensor's first metric, in registry order."""
    topic = topology.topics.name("raw_sensors")
    out = []
    for n, sensor in enumerate(topology.sensors):
        metric = sensor.metrics[0]
        low, high = topology.metrics[metric].range
        doc = {
            "event_id": f"mem-{n}", "sensor_id": sensor.id, "metric": metric,
            "value": round(low + (high - low) * 0.02, 3), "unit": topology.metrics[metric].unit,
            "observed_at": "2026-11-25T00:00:00.000000Z",
        }  # fmt: skip
        out.append(Raw(topic, sensor.id.encode(), orjson.dumps(doc)))
    return out


def run(
    *, source: Path, bootstrap: str, workdir: Path, prefix: str, sensors: int, window: float
) -> dict[str, Any]:
    """Generate the registry, pre-load one reading per sensor, run one worker."""
    path = variants.with_generated_sensors(source, workdir / "generated.yaml", sensors)
    topo = kafkautil.with_prefix(load_topology(path), prefix)
    asyncio.run(kafkautil.create_all(bootstrap, topo))
    stats = asyncio.run(kafkautil.preload(bootstrap, one_per_sensor(topo)))
    result = throughput.run_workers(
        topology_path=path, topology=topo, bootstrap=bootstrap, workdir=workdir,
        prefix=prefix, expected=stats.acked, workers=1, window=window,
    )  # fmt: skip
    result["sensors"] = len(topo.sensors)
    return result
