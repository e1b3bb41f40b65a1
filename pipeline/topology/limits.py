"""Bounds on what a topology may make the loader read and build, checked before building.

Why: a topology is input. A YAML alias bomb (a few hundred bytes that expand to a billion
nodes), a 50 MB file of junk keys or ``sensors: {file: /dev/zero}`` once took minutes and
gigabytes before failing with a ``MemoryError``. Every bound here is checked on cheap
facts first (the file's size, read at most one byte past the bound; the YAML node graph,
whose expanded size is counted without expanding it), so a refusal costs milliseconds.

The defaults leave room for a whole city: the limits are far above the sample's
(15 KB, ~3,000 nodes) and a full-city topology with thousands of communities inline.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "DEFAULT_LIMITS",
    "LimitExceeded",
    "Limits",
    "expanded_size",
    "read_bounded",
]

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a topology may hold; every field is a hard ceiling."""

    #: bytes of the topology YAML file itself
    topology_bytes: int = 16 * MIB
    #: YAML nodes after alias expansion (each scalar, sequence and mapping counts one)
    nodes: int = 1_000_000
    #: bytes of a ``sensors: {file: ...}`` registry
    sensor_file_bytes: int = 256 * MIB
    #: bytes of each ``boundaries`` GeoJSON file
    boundary_file_bytes: int = 256 * MIB
    #: bytes of each area file (``areas: [{file: ..., level: ...}]``)
    area_file_bytes: int = 64 * MIB
    #: bytes of the ``incidents.unit_keys`` file
    keys_file_bytes: int = 4 * MIB


DEFAULT_LIMITS = Limits()


class LimitExceeded(ValueError):
    """A bound of :class:`Limits` was passed; the message says which and by what."""


def _size_text(limit: int) -> str:
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit:,} bytes"


def file_size_problem(path: Path, limit: int) -> str | None:
    """Why ``path`` is too large to read (None when it fits), without reading it whole.

    A regular file is judged by its size; anything else (``/dev/zero``, a pipe) by reading
    at most ``limit + 1`` bytes, in chunks.
    """
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        return f"{path} is a directory"
    if stat.S_ISREG(info.st_mode):
        size = info.st_size
    else:
        size = 0
        with path.open("rb") as stream:
            while size <= limit:
                chunk = stream.read(min(MIB, limit + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
    if size > limit:
        return f"{path} is larger than {_size_text(limit)} (the limit)"
    return None


def read_bounded(path: Path, limit: int) -> str:
    """A UTF-8 text file of at most ``limit`` bytes (``LimitExceeded`` when larger)."""
    problem = file_size_problem(path, limit)
    if problem is not None:
        raise LimitExceeded(problem)
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:  # grew since the check
        msg = f"{path} is larger than {_size_text(limit)} (the limit)"
        raise LimitExceeded(msg)
    return data.decode("utf-8")


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes ``root`` stands for once every alias is expanded, up to ``limit``.

    An alias is the same node object reached twice, so each node's expanded size is
    computed once (memoised by identity) and a bomb is measured in microseconds. A cycle
    (a recursive alias) counts as exceeding the limit.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if key in sizes:
            continue
        if key in on_path:
            return limit + 1
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
