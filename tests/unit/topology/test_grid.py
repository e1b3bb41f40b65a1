"""The grid section, its point index, area files, communities and per-kind partitions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import h3
import pytest

from pipeline.ingest.geo import AreaResolver
from pipeline.models import AreaLevel
from pipeline.topology import Topics, TopologyError, parse_topology
from tests.unit.topology.demo_edits import BASE, errors_after, valid_after

DISTRICT = [[121.40, 31.10], [121.60, 31.10], [121.60, 31.30], [121.40, 31.30], [121.40, 31.10]]
WEST = [[121.40, 31.10], [121.50, 31.10], [121.50, 31.30], [121.40, 31.30], [121.40, 31.10]]


def _feature(code: str, ring: list[list[float]], *, synthetic: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"code": code}
    if synthetic:
        props["synthetic"] = True
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip


def _gridded(tmp_path: Path, resolution: int = 8) -> Any:
    """The demo with a square Huangpu, its west half as a synthetic street, and a grid."""
    (tmp_path / "b.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _feature("310101", DISTRICT),
                    _feature("310101002", WEST, synthetic=True),
                ],
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["boundaries"] = ["b.geojson"]
    data["grid"] = {"kind": "h3", "resolution": resolution}
    data["sensors"] = []
    data["datastreams"] = {}
    return parse_topology(data, tmp_path)


def test_the_index_is_the_h3_fill_of_the_outer_boundary_deepest_area_first(
    tmp_path: Path,
) -> None:
    topology = _gridded(tmp_path)
    index = topology.grid_index()
    assert index is not None
    shape = h3.geo_to_h3shape({"type": "Polygon", "coordinates": [DISTRICT]})
    assert set(index.all_cells()) == set(h3.h3shape_to_cells(shape, 8))
    for cell in index.all_cells():
        lat, lon = h3.cell_to_latlng(cell)
        codes = index.codes(cell)
        assert codes is not None and codes[AreaLevel.district] == "310101"
        assert (codes.get(AreaLevel.street) == "310101002") == (lon < 121.50)
    assert topology.boundary_features().synthetic == {"310101002"}


def test_a_point_resolves_to_every_level_with_its_cell(tmp_path: Path) -> None:
    resolver = AreaResolver(_gridded(tmp_path))
    west = resolver.resolve(31.2, 121.43)
    assert west == {
        AreaLevel.city: "310000",
        AreaLevel.district: "310101",
        AreaLevel.street: "310101002",
        AreaLevel.grid: h3.latlng_to_cell(31.2, 121.43, 8),
    }
    east = resolver.resolve(31.2, 121.57)
    assert east is not None and AreaLevel.street not in east
    assert east[AreaLevel.grid] == h3.latlng_to_cell(31.2, 121.57, 8)
    assert resolver.resolve(48.85, 2.35) is None  # Paris
    assert resolver.smallest(31.2, 121.43) == "310101002"


def test_without_a_grid_there_is_no_index_and_no_cell(tmp_path: Path) -> None:
    topology = _gridded(tmp_path).model_copy(update={"grid": None})
    assert topology.grid_index() is None


def test_grid_section_values() -> None:
    grid = valid_after(lambda d: d.update(grid={"kind": "h3"})).grid
    assert grid is not None and grid.resolution == 9
    errors = errors_after(lambda d: d.update(grid={"kind": "s2", "resolution": 16}))
    assert [path for path, _ in errors] == ["grid.kind", "grid.resolution"]


def test_grid_aggregates_need_a_grid_section() -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["aggregation"] = {"levels": ["grid", "district"]}

    assert errors_after(mutate) == [
        ("aggregation.levels[0]", "grid needs a grid section (grid: {kind: h3, resolution: 9})")
    ]
    topology = valid_after(lambda d: (mutate(d), d.update(grid={"resolution": 9})))
    assert topology.aggregation.levels == (AreaLevel.grid, AreaLevel.district)


# ---------------------------------------------------------------------------- area files


def _with_area_file(tmp_path: Path, text: str, level: str = "community") -> dict[str, Any]:
    (tmp_path / "areas.csv").write_text(text, encoding="utf-8")
    data = copy.deepcopy(BASE)
    data["areas"].append({"file": "areas.csv", "level": level})
    return data


def test_an_area_file_adds_areas_of_its_level(tmp_path: Path) -> None:
    data = _with_area_file(
        tmp_path,
        "code,parent,name\n310101002001,310101002,云南中路居委会\n310101002002,310101002,龙泉园路居委会\n",
    )
    topology = parse_topology(data, tmp_path)
    committees = topology.areas_at(AreaLevel.community)
    assert [a.code for a in committees] == ["310101002001", "310101002002"]
    assert topology.admin_codes("310101002001") == {
        AreaLevel.community: "310101002001",
        AreaLevel.street: "310101002",
        AreaLevel.district: "310101",
        AreaLevel.city: "310000",
    }


def test_area_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    data = _with_area_file(
        tmp_path, "code,parent,name\n310101002001,310101002,\nbad code!,310101002,x\n"
    )
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    paths = [path for path, _ in caught.value.errors]
    assert paths == ["areas[8] (areas.csv line 2).name", "areas[8] (areas.csv line 3).code"]


def test_area_file_refusals(tmp_path: Path) -> None:
    data = _with_area_file(tmp_path, "code,name,kind\n1,x,y\n")
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors[0] == (
        "areas[8].file",
        "areas.csv lacks column(s) parent; unknown column(s) kind "
        "(columns: code,parent,name[,name_en])",
    )
    data["areas"][8] = {"file": "none.csv", "level": "city"}
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors[0] == (
        "areas[8].level",
        "must be district, street, grid or community",
    )


def test_a_community_under_a_district_is_refused(tmp_path: Path) -> None:
    data = _with_area_file(tmp_path, "code,parent,name\n310101999001,310101,x\n")
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors == [
        ("areas[8].parent", "310101 is a district; the parent of a community must be a grid")
    ]


# ---------------------------------------------------------------------------- partitions


def test_each_output_kind_takes_its_partitions_from_the_topology() -> None:
    topics = Topics(partitions=6, area_partitions=2, kind_partitions={"incidents_street": 1})
    assert topics.spec("incidents_street", "310101002").partitions == 1
    assert topics.spec("incidents_district", "310101").partitions == 2
    assert topics.spec("readings").partitions == 6
    errors = errors_after(lambda d: d["topics"].update(kind_partitions={"readings": 2}))
    assert [path for path, _ in errors] == ["topics.kind_partitions.readings"]
