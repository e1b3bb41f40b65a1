"""Writing generated deployment files, or checking that the committed ones are current."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def write_or_check(files: Mapping[str, str], out: Path, *, check: bool, command: str) -> int:
    """Write each `name -> text` under `out`, or with `check` only compare: 1 (and the
    names on stderr, with the `command` that regenerates them) when any differs."""
    stale = []
    for name, text in files.items():
        path = out / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run {command}", file=sys.stderr)
        return 1
    return 0
