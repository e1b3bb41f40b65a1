"""In-range readings of a topology's registered sensors, as tuples and as dry-run input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

from pipeline.engine.local import InputRecord
from pipeline.topology import Topology

START = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


def quiet_readings(topology: Topology, n: int) -> list[tuple[str, str, float, datetime]]:
    """(sensor, metric, value, observed_at): in range, below every rule's first level."""
    rng = random.Random(1409)
    sensors = rng.sample(list(topology.sensors), 60)
    out = []
    for i in range(n):
        sensor = rng.choice(sensors)
        metric = rng.choice(sensor.metrics)
        low, high = topology.metrics[metric].range
        value = round(low + (high - low) * rng.uniform(0.001, 0.02), 3)
        out.append((sensor.id, metric, value, START + timedelta(seconds=i * 300 / n)))
    return out


def input_records(topology: Topology, n: int) -> list[InputRecord]:
    """The readings of :func:`quiet_readings` as the canonical JSON a dry run reads."""
    return [
        InputRecord(
            line=i,
            topic=None,
            key=sensor.encode(),
            value=orjson.dumps(
                {
                    "sensor_id": sensor,
                    "metric": metric,
                    "value": value,
                    "unit": topology.metrics[metric].unit,
                    "observed_at": at.isoformat().replace("+00:00", "Z"),
                }
            ),  # fmt: skip
        )
        for i, (sensor, metric, value, at) in enumerate(quiet_readings(topology, n))
    ]
