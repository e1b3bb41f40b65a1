"""Loading: sections known and required, every error at once, strict YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.topology import (
    TopologyError,
    load_topology,
    parse_topology,
)
from tests.support.paths import TOPOLOGIES
from tests.unit.topology.demo_edits import errors_after


def test_unknown_and_missing_sections() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rulez"] = []
        del d["metrics"]

    errors = errors_after(mutate)
    assert errors[0][0] == "rulez" and errors[0][1].startswith("unknown section (known: id, name")
    assert ("metrics", "is required") in errors


def test_errors_in_several_sections_are_all_reported() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["timezone"] = "Mars/Olympus"
        d["topics"]["retention"]["raw"] = "3x"
        d["metrics"]["pm25"]["unit"] = "furlong"
        d["sensors"][1]["metrics"].append("pm1")
        d["rules"][0]["levels"][2]["threshold"] = 100

    paths = [p for p, _ in errors_after(mutate)]
    assert paths == [
        "timezone",
        "topics.retention.raw",
        "metrics.pm25.unit",
        "rules[0].levels[2].threshold",
        "sensors[1].metrics[2]",
    ]


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_non_mapping_is_refused(data: object) -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, TOPOLOGIES)
    [(path, message)] = caught.value.errors
    assert path == "" and message.startswith("a topology must be a mapping")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology(tmp_path / "missing.yaml")
    [(path, message)] = caught.value.errors
    assert path.endswith("missing.yaml") and "No such file" in message


def test_yaml_syntax_error_has_a_line_number(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nname: [unclosed\nareas: []\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    [(path, message)] = caught.value.errors
    assert path.startswith("line 3, column")
    assert message.startswith("invalid YAML")


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text("id: x\nid: y\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    assert caught.value.errors == [("line 2, column 1", "invalid YAML: duplicate key 'id'")]


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    bad = tmp_path / "evil.yaml"
    bad.write_text("id: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    [(path, message)] = caught.value.errors
    assert path.startswith("line 1") and "could not determine a constructor" in message
