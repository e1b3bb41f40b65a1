"""The topologies the simulator tests run on, loaded once per module."""

from __future__ import annotations

import pytest

from pipeline.topology import Topology, load_topology
from tests.support.paths import TOPOLOGIES


@pytest.fixture(scope="module")
def demo() -> Topology:
    """The small demo city: two districts, no boundaries."""
    return load_topology(TOPOLOGIES / "demo.yaml")


@pytest.fixture(scope="module")
def shanghai() -> Topology:
    """The full Shanghai registry, with boundaries and report categories."""
    return load_topology(TOPOLOGIES / "shanghai.yaml")
