"""Malformed topologies are refused with path-qualified errors, never another exception."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.topology import Topology, TopologyError, load_yaml, parse_topology
from tests.support.paths import TOPOLOGIES

BASE: dict[str, Any] = yaml.safe_load((TOPOLOGIES / "demo.yaml").read_text(encoding="utf-8"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["blue", "red", "above", "outside", "5m", "-1", "310101", "pm25", "sensor"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node inside the mapping (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += _paths(child, (*prefix, index))
    return out


ALL_PATHS = _paths(BASE)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = data
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            parent[last]  # noqa: B018  # the path may be gone after an earlier mutation
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, dict | list):
            continue  # an earlier mutation made it a scalar (a string indexes, but is not a node)
        action = draw(st.sampled_from(["delete", "replace", "swap_type", "add_key"]))
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(values)
        elif action == "swap_type":
            old = parent[last]
            parent[last] = [old] if not isinstance(old, list) else {"x": old}
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=6))] = draw(values)
        else:
            parent[last] = draw(values)
    return data


def _check(data: Any) -> None:
    try:
        topology = parse_topology(data, TOPOLOGIES)
    except TopologyError as exc:
        assert exc.errors
        for path, message in exc.errors:
            assert isinstance(path, str) and isinstance(message, str)
            assert message.strip(), (path, message)
        # a non-mapping is reported at the root; everything else names a path
        if isinstance(data, dict):
            assert all(path for path, _ in exc.errors), exc.errors
    else:
        assert isinstance(topology, Topology)
        topology.topic_plan()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_demo_is_refused_cleanly_or_accepted(data: dict[str, Any]) -> None:
    _check(data)


@settings(max_examples=60, deadline=None)
@given(values)
def test_arbitrary_values_are_refused_cleanly(data: Any) -> None:
    _check(data)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:- \n[]{}'\"!&*#|>%@`,?\t1")), max_size=60))
def test_random_yaml_text_is_refused_cleanly(text: str) -> None:
    try:
        data = load_yaml(text)
    except TopologyError as exc:
        assert exc.errors and all(m.strip() for _, m in exc.errors)
        return
    _check(data)


def test_areas_of_the_wrong_kind_are_refused_by_path() -> None:
    """Found by the mutation test in CI: `areas` as a number reached the file-size pre-check
    (which looks for area files before any section is read) and raised a TypeError there."""
    for wrong in (5, 1.5, True):
        data = copy.deepcopy(BASE)
        data["areas"] = wrong
        _check(data)
        try:
            parse_topology(data, TOPOLOGIES)
        except TopologyError as exc:
            assert any(path.startswith("areas") for path, _ in exc.errors), exc.errors
        else:
            raise AssertionError(wrong)
