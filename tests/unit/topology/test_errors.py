"""Errors by path: messages for unknown keys, one error per line."""

from __future__ import annotations

from typing import Any

from pipeline.topology import (
    TopologyError,
)
from tests.unit.topology.demo_edits import errors_after


def test_unknown_key_inside_a_section() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["threshold"] = 3

    assert errors_after(mutate) == [
        ("rules[0].threshold", "unknown key (not part of the topology format)")
    ]


def test_str_lists_every_error_on_its_own_line() -> None:
    err = TopologyError([("a.b", "one"), ("c[0]", "two")])
    assert str(err) == "a.b: one\nc[0]: two"
