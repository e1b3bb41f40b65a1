"""Citizen reports: valid Chinese texts, some urgent, personal data the pipeline masks."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import orjson

from pipeline.ingest.normalize import Normalizer
from pipeline.ingest.pii import find_personal_data, is_valid_resident_id
from pipeline.sim.reports import resident_id_check
from pipeline.sim.simulator import Simulator
from pipeline.topology import Topology
from tests.unit.sim.sim_world import TEN_AM_LOCAL, subset, valid_docs


def test_reports_are_valid_chinese_some_urgent_some_with_personal_data(
    shanghai: Topology,
) -> None:
    topology = subset(shanghai, "water_supply", 80)
    sim = Simulator(
        topology,
        seed=13,
        start=TEN_AM_LOCAL,
        interval=timedelta(minutes=10),
        reports_per_minute=10,
        episodes_per_hour=2,
    )
    events = list(sim.events(until=TEN_AM_LOCAL + timedelta(hours=8)))
    reports = [e for e in events if e.topic == "cityops.shanghai.reports.raw"]
    assert len(reports) > 3000
    docs = [orjson.loads(e.value) for e in reports]
    assert all(e.key == d["report_id"].encode() for e, d in zip(reports, docs, strict=True))
    assert len({d["report_id"] for d in docs}) == len(docs)
    assert {d["category"] for d in docs} == {c.id for c in topology.report_categories}
    assert 0.05 < sum(d["urgent"] for d in docs) / len(docs) < 0.3
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in d["description"]) for d in docs)
    found = Counter(p.kind for d in docs for p in find_personal_data(d["description"]))
    assert found["mobile"] > 0.15 * len(docs)
    assert found["landline"] > 0.02 * len(docs)
    assert found["id"] > 0.02 * len(docs) and found["id_like"] == 0
    normalizer = Normalizer(topology)
    for event in reports:
        result = normalizer.normalize(event.value)
        assert len(result.reports) == 1 and not result.rejections, event.value
        assert "****" in result.reports[0].description or not find_personal_data(
            orjson.loads(event.value)["description"]
        )


def test_fake_id_numbers_carry_a_valid_checksum() -> None:
    assert resident_id_check("11010519491231002") == "X"  # the GB 11643 worked example
    assert is_valid_resident_id("11010519491231002X")


def test_a_topology_without_boundaries_names_the_area_instead_of_a_point(demo: Topology) -> None:
    sim = Simulator(demo, seed=2, start=TEN_AM_LOCAL, reports_per_minute=30)
    docs = [d for d in valid_docs(list(itertools.islice(sim.events(), 400))) if "report_id" in d]
    assert docs and all("lat" not in d and demo.has_area(d["area"]) for d in docs)
    normalizer = Normalizer(demo)
    assert all(len(normalizer.normalize(orjson.dumps(d)).reports) == 1 for d in docs)
