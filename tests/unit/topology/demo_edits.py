"""The demo topology as the topology tests edit it: one change, then its errors or model."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from pipeline.topology import Topology, TopologyError, parse_topology
from tests.support.paths import TOPOLOGIES

DEMO = TOPOLOGIES / "demo.yaml"
BASE: dict[str, Any] = yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def errors_after(mutate: Callable[[dict[str, Any]], None]) -> list[tuple[str, str]]:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, TOPOLOGIES)
    return caught.value.errors


def valid_after(mutate: Callable[[dict[str, Any]], None]) -> Topology:
    data = copy.deepcopy(BASE)
    mutate(data)
    return parse_topology(data, TOPOLOGIES)
