"""Grid aggregates through the local engine equal an offline groupby of the same input.

The sample topology (H3 resolution 9, aggregation levels grid/street/district/city): a
few thousand in-range readings from random registered sensors over several minutes, run
through the worker's stages without Kafka; the grid rows must equal a groupby computed
here from the input alone (each sensor's cell straight from h3, not through the pipeline).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

import h3
import pytest

from pipeline.engine.local import run
from pipeline.models import AreaLevel
from pipeline.topology import Topology, load_topology
from tests.support.city_readings import input_records, quiet_readings
from tests.support.paths import TOPOLOGIES


@pytest.fixture(scope="module")
def shanghai() -> Topology:
    return load_topology(TOPOLOGIES / "shanghai.yaml")


def test_grid_rows_equal_an_offline_groupby(shanghai: Topology) -> None:
    assert shanghai.grid is not None and AreaLevel.grid in shanghai.aggregation.levels
    readings = quiet_readings(shanghai, 3000)
    result = run(shanghai, input_records(shanghai, 3000))
    assert not result.dead_letters

    expected: dict[tuple[str, str, datetime], list[float]] = defaultdict(list)
    resolution = shanghai.grid.resolution
    for sensor_id, metric, value, at in readings:
        sensor = shanghai.sensor(sensor_id)
        assert sensor is not None
        cell = h3.latlng_to_cell(sensor.lat, sensor.lon, resolution)
        window = at.replace(second=0, microsecond=0)
        expected[(cell, metric, window)].append(value)

    rows = [r for r in result.rows if r.level == AreaLevel.grid]
    got = {(r.area_code, r.metric, r.window_start): r for r in rows}
    assert len(rows) == len(got)  # one row per (cell, metric, window)
    assert set(got) == set(expected)
    for key, values in expected.items():
        row = got[key]
        assert (row.count, row.min, row.max) == (len(values), min(values), max(values))
        assert row.sum == math.fsum(values)
    # every cell is a resolution-9 cell of the city
    index = shanghai.grid_index()
    assert index is not None
    assert all(index.codes(cell) is not None for cell, _, _ in got)
