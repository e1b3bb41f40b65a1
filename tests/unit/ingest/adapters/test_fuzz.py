"""Fuzzing: arbitrary bytes and mutated valid payloads never make normalize() raise."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest.adapters.registry import FORMATS
from pipeline.models import CitizenReport, Reading, RejectReason
from tests.support.paths import CORPUS
from tests.unit.ingest.norm_world import normalizer

VALID = [orjson.loads(p.read_bytes()) for p in sorted(CORPUS.glob("*/valid/*.json"))]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2026-05-01T00:00:00Z",
            "2026-05-01T08:00:00",
            "GQ",
            "aq-001",
            "42",
            "Property",
            "Point",
            "9999-12-31T23:59:59-23:59",
            "urn:ngsi-ld:X:aq-001",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def check(raw: bytes, headers: Any = None) -> None:
    result = normalizer().normalize(raw, headers)
    for rejection in result.rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.detail
        assert not rejection.detail.startswith("internal error")
    for event in result.events:
        assert isinstance(event, Reading | CitizenReport)
    assert result.events or result.rejections or result.skipped


def mutate(doc: Any, path: list[int], replacement: Any) -> Any:
    """Replace the value at a pseudo-random path (chosen by ``path``) with ``replacement``."""
    if not path:
        return replacement
    step, rest = path[0], path[1:]
    if isinstance(doc, dict) and doc:
        keys = list(doc)
        key = keys[step % len(keys)]
        if step % 7 == 0:
            return {k: v for k, v in doc.items() if k != key}  # drop a field
        return {**doc, key: mutate(doc[key], rest, replacement)}
    if isinstance(doc, list) and doc:
        i = step % len(doc)
        return [*doc[:i], mutate(doc[i], rest, replacement), *doc[i + 1 :]]
    return replacement


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(json_values, st.sampled_from([None, *FORMATS, "ngsi", "bogus"]))
def test_arbitrary_json_under_every_format(doc: Any, fmt: str | None) -> None:
    headers = None if fmt is None else [("cityops-format", fmt.encode())]
    check(orjson.dumps(doc), headers)


@FUZZ
@given(
    st.sampled_from(VALID),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=5),
    json_values,
)
def test_mutated_valid_payloads(doc: Any, path: list[int], replacement: Any) -> None:
    check(orjson.dumps(mutate(doc, path, replacement)))


@FUZZ
@given(st.sampled_from(VALID), st.integers(min_value=0, max_value=400))
def test_truncated_valid_payloads(doc: Any, cut: int) -> None:
    raw = orjson.dumps(doc)
    check(raw[: cut % (len(raw) + 1)])
