"""The demo topology as an end-to-end test deploys it: under the test's topic prefix,
written where the worker reads it, with its topics created on the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.kafka.admin import create_topics
from pipeline.topology import Topology, parse_topology
from tests.support.paths import DEMO


def demo_data() -> dict[str, Any]:
    """The demo topology's document, for a test to change before `deploy`."""
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    return data


async def deploy(
    data: dict[str, Any], *, bootstrap: str, tmp_path: Path, prefix: str
) -> tuple[Path, Topology]:
    """Write `data` under `prefix` to `tmp_path/topology.yaml` and create its topics."""
    data["topics"]["prefix"] = prefix
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    topology = parse_topology(data, DEMO.parent)
    await create_topics(bootstrap, topology.topic_plan())
    return path, topology
