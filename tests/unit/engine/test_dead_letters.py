"""A dead letter always fits its topic: above a quarter of the topology's message size
(256 KiB at most) the original is cut, its length and SHA-256 kept."""

from __future__ import annotations

import hashlib

from pipeline.engine.emit import SourceRef
from pipeline.engine.stages.dead_letters import MAX_ORIGINAL_BYTES, dead_letter
from pipeline.models import DeadLetter, Rejection, RejectReason
from pipeline.topology import load_topology
from tests.support.paths import DEMO
from tests.unit.topology.demo_edits import valid_after

REJECTION = Rejection(reason=RejectReason.oversized, detail="too big")


def _letter(topology: object, raw: bytes) -> DeadLetter:
    emit = dead_letter(topology, REJECTION, raw, SourceRef("raw", 0, 7), stage="normalize")  # type: ignore[arg-type]
    return DeadLetter.model_validate_json(emit.value)


def test_the_original_is_cut_at_a_quarter_of_the_topology_s_message_size() -> None:
    small = valid_after(lambda d: d["topics"].update(max_message_bytes=131_072))
    raw = b"x" * 100_000
    letter = _letter(small, raw)
    assert len(letter.original) == 32_768 < MAX_ORIGINAL_BYTES
    assert letter.original_size == 100_000
    assert letter.original_sha256 == hashlib.sha256(raw).hexdigest()


def test_with_the_default_size_the_cut_is_256_kib_and_small_originals_are_whole() -> None:
    topology = load_topology(DEMO)
    assert len(_letter(topology, b"y" * 300_000).original) == MAX_ORIGINAL_BYTES
    whole = _letter(topology, b"{}")
    assert (whole.original, whole.original_sha256) == (b"{}", None)
