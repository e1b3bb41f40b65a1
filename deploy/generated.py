"""Writing generated deployment files, or checking that the committed ones are current."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.runbooks import RunbookError, base_url


def generator_main(
    argv: list[str] | None,
    *,
    description: str,
    render: Callable[[str], Mapping[str, str]],
    out: Path,
    command: str,
) -> int:
    """The command line both generators share: `--runbook-base-url`, `--out`, `--check`;
    `render(base)` gives file name -> text. Exit 2 for a bad base URL."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runbook-base-url", help="absolute URL of docs/operations.md")
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    try:
        files = render(base_url(args.runbook_base_url))
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return write_or_check(files, args.out, check=args.check, command=command)


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
