"""The hand-written corpus: every file's expected outcome is encoded in its path.

Directories are listed, not named here: a new format's ``tests/corpus/<format>/`` is picked up
by itself, and a format without one (or a directory no format owns) fails the first test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest.adapters.registry import FORMATS
from tests.support.paths import CORPUS
from tests.unit.ingest.norm_world import run

FILES = sorted(CORPUS.glob("*/*/*.json"))


def test_corpus_covers_every_format() -> None:
    directories = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert directories == sorted(FORMATS)
    for fmt in FORMATS:
        kinds = {p.parts[-2] for p in FILES if p.parts[-3] == fmt}
        assert kinds == {"valid", "invalid"}, fmt


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
