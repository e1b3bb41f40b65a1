"""A topology for several workers: `python -m deploy.k8s.topology [--check] [--source F --out D]`.

Why generated: several workers share one store, so the topology they load must name the
ClickHouse server (`sinks.store: clickhouse`; chDB allows one process per data directory)
and ask for replicated topics (`topics.replication: 3`). A ConfigMap is also flat (no
sub-directories), so the sensor registry and boundary files sit beside the topology and
its references lose their folders. Deriving that copy from the sample keeps one source of
truth: a unit test fails when the committed copy under `base/topology/` is stale.

To deploy your own topology, run it with `--source your.yaml --out DIR` and point the
`cityops-topology` ConfigMap generator at DIR (docs/deploy.md shows the overlay).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.topology import TopologyError, load_topology
from pipeline.topology.areas import area_files

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "topologies" / "shanghai.yaml"
BASE_TOPOLOGY_DIR = Path(__file__).resolve().parent / "base" / "topology"
#: The topology's name inside the ConfigMap; the worker's `--topology` points at it.
TOPOLOGY_KEY = "topology.yaml"
REPLICATION = 3

_HEADER = """\
# GENERATED from {source} by `python -m deploy.k8s.topology`: edit
# the source and rerun. Changed for several workers: sinks.store is clickhouse (one server
# shared by every worker), topics.replication is {replication}, the files it names sit beside it.
"""


class ClusterTopologyError(Exception):
    """The source cannot be turned into a cluster topology automatically."""


def _replace_once(text: str, pattern: str, replacement: str, what: str) -> str:
    """`text` with the one line matching `pattern` rewritten; refuse zero or several."""
    result, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        msg = f"expected exactly one {what} line, found {count}: edit the copy by hand"
        raise ClusterTopologyError(msg)
    return result


def _referenced_files(document: dict[str, Any]) -> list[str]:
    """Relative paths the topology reads besides itself: area files, boundaries and a
    sensor file.

    The document passed `load_topology`, so the shapes are the valid ones."""
    boundaries = document.get("boundaries") or []
    paths = area_files(document.get("areas"))
    paths += [boundaries] if isinstance(boundaries, str) else list(boundaries)
    sensors = document.get("sensors")
    if isinstance(sensors, dict) and isinstance(sensors.get("file"), str):
        paths.append(sensors["file"])
    return [str(path) for path in paths]


def render(source: Path = SAMPLE) -> dict[str, bytes]:
    """The files of the cluster topology folder: the topology and every file it names."""
    try:
        load_topology(source)
    except TopologyError as exc:
        msg = f"{source} is not a valid topology: {exc}"
        raise ClusterTopologyError(msg) from exc
    text = source.read_text(encoding="utf-8")
    files: dict[str, bytes] = {}
    for relative in _referenced_files(yaml.safe_load(text)):
        name = Path(relative).name
        if name in files or name == TOPOLOGY_KEY:
            msg = f"two referenced files are both called {name}: a ConfigMap is flat"
            raise ClusterTopologyError(msg)
        files[name] = (source.parent / relative).read_bytes()
        text = _replace_once(
            text, rf"^([ \t]*[^#\s][^#\n]*?)\b{re.escape(relative)}\b", rf"\1{name}", relative
        )
    text = _replace_once(
        text, r"^([ \t]+store:[ \t]*)chdb[ \t]*$", r"\1clickhouse", "sinks.store: chdb"
    )
    text = _replace_once(
        text, r"^([ \t]+replication:[ \t]*)\d+[ \t]*$", rf"\g<1>{REPLICATION}", "topics.replication"
    )
    shown = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source.name
    header = _HEADER.format(source=shown, replication=REPLICATION)
    files[TOPOLOGY_KEY] = (header + text).encode("utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=SAMPLE, help="topology YAML to derive")
    parser.add_argument("--out", type=Path, default=BASE_TOPOLOGY_DIR, help="folder to write")
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    try:
        files = render(args.source.resolve())
    except ClusterTopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        present = {path.name for path in args.out.glob("*")} if args.out.is_dir() else set()
        stale = sorted(
            name
            for name, data in files.items()
            if not (args.out / name).is_file() or (args.out / name).read_bytes() != data
        )
        stale += sorted(present - set(files))
        if stale:
            print(f"stale: {', '.join(stale)}; run python -m deploy.k8s.topology", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
