"""A synthetic registry at city scale: every street by area, the sample's kind mix, and the
100,000-sensor sample that `topology validate` and `show` summarise."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.topology import topology_app
from pipeline.models import AreaLevel
from pipeline.sim.registry import kind_mix, spread_sensors
from pipeline.topology import Topology, load_topology
from tests.support.paths import TOPOLOGIES
from topologies.shanghai.full_sample import write_sample


def test_sensors_cover_every_street_in_proportion_to_its_area(shanghai: Topology) -> None:
    rows = spread_sensors(shanghai, 20_000, seed=3)
    assert len(rows) == 20_000 and len({r["id"] for r in rows}) == 20_000
    index = shanghai.grid_index()
    assert index is not None
    street_of = {}
    for row in rows:
        street = shanghai.admin_codes(row["area"])[AreaLevel.street]
        placed = index.locate(float(row["lat"]), float(row["lon"]))[1]
        assert placed is not None and placed[AreaLevel.street] == street, row
        street_of[row["id"]] = street
    per_street = Counter(street_of.values())
    assert len(per_street) == 215
    cells = Counter(
        codes[AreaLevel.street] for codes in map(index.codes, index.all_cells()) if codes
    )
    total = sum(cells.values())
    for street, n in per_street.items():
        assert abs(n - 20_000 * cells[street] / total) < 1, street  # largest remainders
    committees = sum(shanghai.area(r["area"]).level == AreaLevel.community for r in rows)
    assert 0.15 < committees / len(rows) < 0.25
    mix = Counter(r["kind"] for r in rows)
    sample = {kind: weight for kind, _, _, weight in kind_mix(shanghai.sensors)}
    for kind, weight in sample.items():
        assert abs(mix[kind] / len(rows) - weight / sum(sample.values())) < 0.02, kind
    assert spread_sensors(shanghai, 500, seed=3) == spread_sensors(shanghai, 500, seed=3)


@pytest.fixture(scope="module")
def full_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 100,000-sensor sample written into a scratch copy of topologies/."""
    root = tmp_path_factory.mktemp("topologies")
    for folder in ("boundaries", "shanghai"):
        (root / folder).symlink_to(TOPOLOGIES / folder)
    (root / "sensors").mkdir()
    (root / "sensors" / "shanghai.csv").symlink_to(TOPOLOGIES / "sensors" / "shanghai.csv")
    (root / "shanghai.yaml").symlink_to(TOPOLOGIES / "shanghai.yaml")
    return write_sample(100_000, 14, source=root / "shanghai.yaml", target=root / "full.yaml")


def test_the_full_sample_validates_and_shows_the_whole_city(full_sample: Path) -> None:
    topology = load_topology(full_sample)
    assert len(topology.sensors) == 100_000
    sample = load_topology(TOPOLOGIES / "shanghai.yaml")
    assert topology.model_dump(exclude={"sensors"}) == sample.model_dump(exclude={"sensors"})
    runner = CliRunner()
    validated = runner.invoke(topology_app, ["validate", str(full_sample)], env={"COLUMNS": "300"})
    assert validated.exit_code == 0, validated.output
    summary = re.sub(r"\s+", " ", validated.output)
    assert (
        "OK shanghai: 1 city, 16 districts, 215 streets, 6395 communities; "
        "grid h3 resolution 9 (99,631 cells); 100,000 sensors;" in summary
    )
    shown = runner.invoke(topology_app, ["show", str(full_sample)], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "Sensors per district (100000)" in shown.output
    assert "SYNTHETIC stand-ins: 215 street" in shown.output
