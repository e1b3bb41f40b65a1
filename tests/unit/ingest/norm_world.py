"""Shared helpers for the normalization tests: the fixture topology and a normalize shortcut."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from pipeline.ingest.normalize import Normalizer, NormalizeResult
from pipeline.topology import Topology, load_topology
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "normalize-city.yaml"


@cache
def city() -> Topology:
    """The fixture topology (boundaries, wide catalogue, datastreams)."""
    return load_topology(FIXTURE)


@cache
def normalizer() -> Normalizer:
    """One Normalizer over the fixture topology, no dedup."""
    return Normalizer(city())


def run(doc: Any, headers: Any = None) -> NormalizeResult:
    """Normalize a JSON-able document (or raw bytes)."""
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return normalizer().normalize(raw, headers)


def reasons(result: NormalizeResult) -> list[str]:
    """The rejection reasons as plain strings."""
    return [r.reason.value for r in result.rejections]
