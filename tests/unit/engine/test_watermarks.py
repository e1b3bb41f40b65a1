"""`GET /watermarks`' document: each area's watermark and lateness, the sources holding it
back and the idle ones, and each raw partition's progress."""

from __future__ import annotations

from datetime import timedelta

from pipeline.aggregates.windows import to_micros
from pipeline.engine.watermarks import watermarks_report
from pipeline.models import ReadingRow
from pipeline.topology import load_topology
from tests.support.paths import DEMO
from tests.unit.aggregates.test_windows import MINUTE, T_BASE, _from, state

TOPOLOGY = load_topology(DEMO)


def test_an_area_shows_its_watermark_the_source_behind_and_the_idle_one() -> None:
    s = state(idle_timeout=timedelta(minutes=5))

    def add(sensor: str, minutes: float, arrived_minutes: float) -> None:
        arrived = to_micros(T_BASE + arrived_minutes * MINUTE)
        s.add(_from(sensor, T_BASE + minutes * MINUTE, 1.0), False, arrived)

    add("quiet", 0, 0)  # then silent for 10 minutes of arrivals: idle
    add("trailing", 7, 9)
    add("busy", 9, 9)
    add("ahead", 24 * 60, 10)  # stamped a day ahead: no effect on the watermark
    add("busy", 10, 10)
    (area,) = watermarks_report([("310101", s)], TOPOLOGY)["areas"]
    assert area["area"] == "310101" and area["name"] == "Huangpu"
    assert area["allowed_lateness_seconds"] == 30 and area["idle_timeout_seconds"] == 300
    assert area["behind"] == {"count": 1, "sources": ["trailing"], "at": "2026-11-28T08:07:00Z"}
    assert area["watermark"] == "2026-11-28T08:06:30Z"  # trailing's newest minus 30 s
    assert area["idle"] == {"count": 1, "sources": ["quiet"]}
    assert area["active_sources"] == 3 and area["newest"] == "2026-11-29T08:00:00Z"


def test_partitions_show_their_progress_and_their_sources() -> None:
    a, b = state(), state()
    a.add_row(ReadingRow.of(_from("s1", T_BASE, 1.0), to_micros(T_BASE)), False, "raw:0")
    a.progress["raw:0"] = to_micros(T_BASE + MINUTE)
    b.add_row(ReadingRow.of(_from("s2", T_BASE, 1.0), to_micros(T_BASE)), False, "raw:1")
    b.progress["raw:1"] = to_micros(T_BASE)
    doc = watermarks_report([("310104", b), ("310101", a)], TOPOLOGY)
    assert [area["area"] for area in doc["areas"]] == ["310101", "310104"]
    assert doc["partitions"] == [
        {"partition": "raw:0", "progress": "2026-11-28T08:01:00Z", "active_sources": 1,
         "idle_sources": 0},
        {"partition": "raw:1", "progress": "2026-11-28T08:00:00Z", "active_sources": 1,
         "idle_sources": 0},
    ]  # fmt: skip


def test_an_area_with_nothing_yet_has_no_watermark() -> None:
    (area,) = watermarks_report([("310000", state())], TOPOLOGY)["areas"]
    assert (area["watermark"], area["behind"]["count"], area["idle"]["count"]) == (None, 0, 0)
