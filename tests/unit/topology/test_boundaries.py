"""The boundaries section: known codes, points resolved to areas."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline.topology import (
    TopologyError,
    parse_topology,
)
from tests.unit.topology.demo_edits import BASE


def test_boundary_codes_must_be_known(tmp_path: Path) -> None:
    (tmp_path / "b.geojson").write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"999"},'
        '"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}',
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["boundaries"] = "b.geojson"
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors == [
        ("boundaries[0] (b.geojson features[0])", "properties.code '999' is not a known area")
    ]


def test_boundaries_resolve_points(tmp_path: Path) -> None:
    (tmp_path / "b.geojson").write_text(
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"code":"310101"},'
        '"geometry":{"type":"Polygon","coordinates":[[[121,31],[122,31],[122,32],[121,31]]]}},'
        '{"type":"Feature","properties":{"code":"310101002"},'
        '"geometry":{"type":"Polygon","coordinates":[[[121.5,31.1],[121.9,31.1],[121.9,31.4],[121.5,31.1]]]}}'
        "]}",
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["boundaries"] = ["b.geojson"]
    topo = parse_topology(data, tmp_path)
    assert [code for code, _ in topo.boundary_features()] == ["310101", "310101002"]
    assert topo.areas_containing(31.2, 121.8) == ["310101002", "310101"]
    assert topo.areas_containing(31.5, 121.2) == []
