"""`placement_warnings`: boundaries and located reports that cannot agree (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.topology import Topology, load_topology, parse_topology, placement_warnings
from tests.support.paths import DEMO, FIXTURES, SHANGHAI

CITY = FIXTURES / "normalize-city.yaml"


def _city_with(tmp_path: Path, codes: set[str], **override: Any) -> Topology:
    """The normalization fixture city with only the boundaries of `codes` (and overrides)."""
    collection = json.loads((FIXTURES / "normalize-city.geojson").read_text(encoding="utf-8"))
    collection["features"] = [f for f in collection["features"] if f["properties"]["code"] in codes]
    (tmp_path / "some.geojson").write_text(json.dumps(collection), encoding="utf-8")
    data = yaml.safe_load(CITY.read_text(encoding="utf-8"))
    data.update(boundaries="some.geojson", **override)
    return parse_topology(data, tmp_path)


def test_the_sample_and_a_fully_covered_city_have_no_warning() -> None:
    assert placement_warnings(load_topology(SHANGHAI)) == []
    assert placement_warnings(load_topology(CITY)) == []


def test_without_boundaries_located_reports_are_the_city_s() -> None:
    [(where, message)] = placement_warnings(load_topology(DEMO))
    assert where == "boundaries"
    assert message.startswith("none: a located report (Open311 lat/long")
    assert "placed at city level" in message


def test_a_district_no_boundary_covers_is_named(tmp_path: Path) -> None:
    # Huangpu is covered by its street's polygon alone; Xuhui by nothing
    topology = _city_with(tmp_path, {"310101002"})
    [(where, message)] = placement_warnings(topology)
    assert where == "boundaries"
    assert message.startswith("no boundary covers 1 of 2 districts (310104 Xuhui)")
    assert "dead-lettered outside_jurisdiction" in message


def test_many_uncovered_districts_are_counted_and_the_first_named(tmp_path: Path) -> None:
    data = yaml.safe_load(CITY.read_text(encoding="utf-8"))
    extra = [
        {"code": f"3101{n:02d}", "level": "district", "parent": "310000", "name": f"区{n}"}
        for n in range(20, 30)
    ]
    topology = _city_with(tmp_path, {"310101"}, areas=[*data["areas"], *extra])
    [(_, message)] = placement_warnings(topology)
    assert message.startswith("no boundary covers 11 of 12 districts (310104 Xuhui, 310120 区20")
    assert "310126 区26 and 3 more)" in message


def test_no_report_categories_no_warning(tmp_path: Path) -> None:
    assert placement_warnings(_city_with(tmp_path, set(), report_categories=[])) == []
