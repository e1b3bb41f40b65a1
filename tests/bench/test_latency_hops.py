"""The latency part splits each incident's time into hops from record times (no broker:
the record times are given)."""

from __future__ import annotations

from typing import Any

from bench.latency import Hops, hops, summary


def incident(incident_id: str, *event_ids: str) -> dict[str, Any]:
    return {"incident_id": incident_id, "evidence": {"event_ids": list(event_ids)}}


RAW = {"lat-1": 1_000, "lat-2": 1_010, "lat-3": 1_020, "lat-4": 2_000, "lat-5": 3_000}
BATCHED = {"lat-1": 1_004, "lat-2": 1_015, "lat-3": 1_030, "lat-4": 2_050}
EVENTS = {"inc-a": 1_070, "inc-b": 2_150, "inc-c": 3_100}


def test_hops_follow_the_latest_evidence_reading() -> None:
    opened = [
        (1_092, incident("inc-a", "lat-1", "lat-3", "lat-2")),  # latest evidence: lat-3
        (2_170, incident("inc-b", "lat-4", "not-injected")),
    ]
    assert hops(opened, RAW, BATCHED, EVENTS) == [
        Hops(total=72, intake=10, analysis=40, lifecycle=22),
        Hops(total=170, intake=50, analysis=100, lifecycle=20),
    ]


def test_samples_with_a_missing_record_are_left_out() -> None:
    opened = [
        (3_120, incident("inc-c", "lat-5")),  # its readings batch was not found
        (4_000, incident("inc-d", "lat-4")),  # nor this incident event
        (4_100, incident("inc-e", "other")),  # no injected evidence
    ]
    assert hops(opened, RAW, BATCHED, EVENTS) == []


def test_summary_gives_the_hops_of_the_p99_sample() -> None:
    # 100 samples: totals 60, 62, ... 254 (analysis 28 ... 222), then two slow ones; the
    # p99 is the second slowest, and each hop's median is its own (50th and 51st values).
    samples = [Hops(t, 10, t - 32, 22) for t in range(60, 256, 2)]
    samples += [Hops(300, 70, 200, 30), Hops(400, 5, 373, 22)]
    got = summary(sorted(samples))
    assert got["p99_ms"] == 300 and got["max_ms"] == 400 and got["min_ms"] == 60
    assert got["hops_of_p99_ms"] == {"intake": 70, "analysis": 200, "lifecycle": 30}
    assert got["hops_p50_ms"] == {"intake": 10, "analysis": 127, "lifecycle": 22}
    assert got["p50_ms"] == 159
    assert summary([]) == {}
