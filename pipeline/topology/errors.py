"""How a refused topology reports its problems: ``(path, message)`` pairs, never a traceback.

Why: a data engineer edits the YAML by hand and needs every error at once, each pinned to
its place (``rules[3].levels[1].threshold``) in plain words. pydantic's own errors are
rewritten here; validators that find several problems below one node raise :class:`Issues`
so each problem keeps its own path.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = [
    "ErrorList",
    "Issues",
    "Loc",
    "TopologyError",
    "convert",
    "dedupe",
    "key_path",
    "loc_to_path",
    "path_to_loc",
    "raise_issues",
    "short",
]

ErrorList = list[tuple[str, str]]
Loc = tuple[str | int, ...]


class TopologyError(ValueError):
    """A topology was refused; ``errors`` lists every problem as ``(path, message)``."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: ErrorList = [(_bounded(str(p)), _bounded(str(m))) for p, m in errors] or [
            ("", "invalid")
        ]
        super().__init__("\n".join(f"{p}: {m}" if p else m for p, m in self.errors))


class Issues(ValueError):
    """Raised inside validators to report several errors below the validated node."""

    def __init__(self, issues: Sequence[tuple[Loc, str]]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(m for _, m in self.issues))


def raise_issues(issues: Sequence[tuple[Loc, str]]) -> None:
    """Raise :class:`Issues` when there are any."""
    if issues:
        raise Issues(issues)


# --------------------------------------------------------------------------- paths


def key_path(key: object) -> str:
    """One mapping key as a path step: ``.name``, or ``["a b"]`` when it is not a word."""
    text = str(key)
    if re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return f".{text}"
    return f"[{json.dumps(text, ensure_ascii=False)}]"


def loc_to_path(loc: Sequence[str | int]) -> str:
    """``('rules', 3, 'levels', 1, 'threshold')`` -> ``rules[3].levels[1].threshold``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("<") or part == "[key]":
            continue
        else:
            out += key_path(part)
    return out.lstrip(".")


def path_to_loc(path: str) -> Loc:
    """``rules[3].levels[1]`` -> ``('rules', 3, 'levels', 1)``."""
    loc: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        loc.append(int(index) if index else name)
    return tuple(loc)


_EXCERPT = reprlib.Repr()
for _field, _limit in (
    ("maxlevel", 2), ("maxstring", 40), ("maxother", 40), ("maxlong", 40),
    ("maxdict", 4), ("maxlist", 4), ("maxtuple", 4), ("maxset", 4), ("maxfrozenset", 4),
):  # fmt: skip
    setattr(_EXCERPT, _field, _limit)
MAX_MESSAGE = 300


def short(value: object) -> str:
    """A value as an excerpt for a message, at most 40 characters.

    Only the excerpt is ever rendered (``reprlib``: a few items of a container, the start
    of a string), never the whole value: a 5 GB value costs what a small one costs.
    """
    text = _EXCERPT.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


# --------------------------------------------------------------------------- messages

_MESSAGE_REWRITES: tuple[tuple[str, str], ...] = (
    ("Input should be", "must be"),
    ("String should", "must"),
    ("Tuple should", "must"),
    ("List should", "must"),
    ("Value should", "must"),
)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key (not part of the topology format)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "assertion_error":
        return str(error["msg"]).removeprefix("Assertion failed, ")
    msg = str(error["msg"])
    for old, new in _MESSAGE_REWRITES:
        if msg.startswith(old):
            msg = new + msg[len(old) :]
            break
    if kind.endswith("_type") or kind.endswith("_parsing") or kind in ("literal_error", "enum"):
        msg += f", got {short(error.get('input'))}"
    if kind == "union_tag_invalid":
        msg = "has the wrong shape"
    return msg


def convert(exc: ValidationError, prefix: Loc) -> ErrorList:
    """pydantic's errors -> ``(path, message)``, expanding multi-issue validator errors."""
    out: ErrorList = []
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        if loc and loc[-1] == "[key]":
            out.append((loc_to_path(loc), f"key {_message(error)}"))
            continue
        ctx = error.get("ctx") or {}
        issue = ctx.get("error")
        if isinstance(issue, Issues):
            out += [(loc_to_path((*loc, *sub)), msg) for sub, msg in issue.issues]
        else:
            out.append((loc_to_path(loc), _message(error)))
    return dedupe(out)


def dedupe(errors: Iterable[tuple[str, str]]) -> ErrorList:
    """The errors in order, each once."""
    seen: set[tuple[str, str]] = set()
    out: ErrorList = []
    for item in errors:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
