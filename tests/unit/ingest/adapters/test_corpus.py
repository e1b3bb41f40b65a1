"""The hand-written corpus: every file's expected outcome is encoded in its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CORPUS
from tests.unit.ingest.norm_world import run

FILES = sorted(CORPUS.glob("*/*/*.json"))


def test_corpus_covers_every_format() -> None:
    formats = {p.parts[-3] for p in FILES}
    assert formats == {"canonical", "ngsi-v2", "ngsi-ld", "sensorthings", "open311"}
    assert {p.parts[-2] for p in FILES} == {"valid", "invalid"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: "/".join(p.parts[-3:]))
def test_corpus_file(path: Path) -> None:
    fmt, kind = path.parts[-3], path.parts[-2]
    result = run(path.read_bytes())
    if kind == "valid":
        assert result.rejections == []
        assert result.events
        assert result.format == fmt
        assert {e.source_format for e in result.events} == {fmt}
    else:
        expected = path.stem.split("__")[0]
        assert result.events == []
        assert result.rejections
        assert {r.reason.value for r in result.rejections} == {expected}
