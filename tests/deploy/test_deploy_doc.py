"""docs/deploy.md stays true: its sizing figures are the benchmark's latest, it covers
what an operator needs (steps, sizing, upgrades, topology versions, what to watch), and
every file it names exists."""

from __future__ import annotations

import re

from tests.support.paths import ROOT

DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
BENCHMARK = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"no section {title!r}"
    return found[1]


def _measured(row: str, unit: str) -> int:
    """The figure of a benchmark result row (`| row | 3,099 readings/s | ... |`)."""
    found = re.search(rf"^\| {re.escape(row)} \| ([\d,]+) {unit}", BENCHMARK, re.M)
    assert found, f"docs/benchmark.md has no row {row!r}"
    return int(found[1].replace(",", ""))


def test_sizing_quotes_the_latest_benchmark() -> None:
    sizing = _section(DEPLOY, "Sizing")
    one = _measured("cityops: one worker, one reading a message", "readings/s")
    base = _measured("cityops: one worker, joined before its input", "readings/s")
    two = _measured("cityops: two workers, one group", "readings/s")
    for figure in (one, two):
        assert f"about {round(figure, -2):,}" in sizing, figure
    assert f"{two / base:.2f}x" in sizing
    for row in ("worker peak RSS, 400 sensors", "worker peak RSS, 100,000 sensors"):
        assert f"{_measured(row, 'MB')} MB" in sizing
    assert "**Partitions per worker.**" in sizing


def test_it_goes_from_one_machine_to_a_cluster_and_covers_operations() -> None:
    steps = re.findall(r"^## (\d)\. (.+)$", DEPLOY, re.M)
    assert [number for number, _ in steps] == ["1", "2", "3", "4"]
    for title in ("Sizing", "Upgrades", "What to watch"):
        assert _section(DEPLOY, title).strip()
    upgrades = _section(DEPLOY, "Upgrades")
    assert "new topology version" in upgrades
    assert "ClickHouse server backend" in DEPLOY  # several workers need it
    assert "store init -t TOPOLOGY --cluster NAME" in DEPLOY


def test_every_file_it_names_exists() -> None:
    named = set(re.findall(r"`((?:deploy|docs|topologies|schemas|bench)/[\w./-]+)`", DEPLOY))
    assert named
    missing = [
        path
        for path in sorted(named)
        if not (ROOT / path).exists() and not path.endswith(".env")  # uncommitted secrets
    ]
    assert not missing, missing
