"""Properties of threshold detection that must hold for any input: keyed partitioning,
lateness, persistence, replay, and the one-open-incident lifecycle shape."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import Reading
from pipeline.rules.detection import DetectorState, state_key, subject_for
from pipeline.rules.lifecycle import IncidentEvent
from tests.unit.rules.streams import (
    LATENESS_MIN,
    TOPO_LATE,
    TOPO_NOW,
    A,
    Key,
    pm25_series,
    run_keyed,
    worker_of,
)


@settings(max_examples=120, deadline=None)
@given(pm25_series())
def test_partitioned_by_subject_equals_one_worker(readings: list[Reading]) -> None:
    one = run_keyed(readings, TOPO_NOW)
    parts: dict[Key, list[IncidentEvent]] = {}
    for worker in (0, 1):
        mine = []
        for r in readings:
            # A real deployment routes each (rule, subject) by its key; a reading feeds the
            # worker of every subject it has. Here: feed it if any of its subjects is ours.
            if any(
                (s := subject_for(r, rule, TOPO_NOW)) is not None and worker_of(s) == worker
                for rule in TOPO_NOW.rules
            ):
                mine.append(r)
        got = run_keyed(mine, TOPO_NOW)
        parts.update({k: v for k, v in got.items() if worker_of(k[1]) == worker})
    assert parts == one


@settings(max_examples=120, deadline=None)
@given(pm25_series(), st.randoms(use_true_random=False))
def test_out_of_order_within_lateness_changes_nothing(readings: list[Reading], rnd) -> None:  # type: ignore[no-untyped-def]
    in_order = run_keyed(readings, TOPO_LATE)
    # Each reading is delayed by less than the allowed lateness.
    jitter = {r.event_id: rnd.uniform(0, LATENESS_MIN - 0.01) for r in readings}
    arrival = sorted(
        readings,
        key=lambda r: (r.observed_at + timedelta(minutes=jitter[r.event_id]), r.event_id),
    )
    assert run_keyed(arrival, TOPO_LATE) == in_order


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_persisting_state_between_every_reading_changes_nothing(readings: list[Reading]) -> None:
    assert run_keyed(readings, TOPO_LATE, roundtrip=True) == run_keyed(readings, TOPO_LATE)


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_replay_is_deterministic_and_a_second_delivery_emits_nothing(
    readings: list[Reading],
) -> None:
    states: dict[Key, DetectorState] = {}
    first = run_keyed(readings, TOPO_NOW, states, flush=False)
    assert run_keyed(readings, TOPO_NOW, flush=False) == first
    again = run_keyed(readings, TOPO_NOW, states, flush=False)  # delivered twice
    assert {k: v for k, v in again.items() if k[0] == "pm25-count"} == {}


@settings(max_examples=150, deadline=None)
@given(pm25_series())
def test_one_open_incident_per_subject_and_no_downgrade(readings: list[Reading]) -> None:
    for key, events in run_keyed(readings, TOPO_NOW).items():
        open_id: str | None = None
        seen_ids: set[str] = set()
        last_rank = -1
        last_count = 0
        for event in events:
            inc = event.incident
            if event.action == A.open:
                assert open_id is None, key
                assert inc.incident_id not in seen_ids
                open_id = inc.incident_id
                seen_ids.add(open_id)
                last_rank = inc.severity.rank
                last_count = inc.evidence.count
                assert inc.subject == key[1] and inc.rule_id == key[0]
                continue
            assert inc.incident_id == open_id, key
            assert inc.severity.rank >= last_rank
            if event.action == A.upgrade:
                assert inc.severity.rank > last_rank
            if event.action == A.evidence:
                assert inc.severity.rank == last_rank
            if event.action == A.auto_resolve:
                assert inc.evidence.count == last_count
                open_id = None
            else:
                assert inc.evidence.count == last_count + 1
                assert inc.evidence.peak_value >= inc.evidence.threshold
            last_rank = inc.severity.rank
            last_count = inc.evidence.count


@settings(max_examples=100, deadline=None)
@given(pm25_series())
def test_sensor_opens_need_three_breaches_above_the_lowest_level(readings: list[Reading]) -> None:
    events = run_keyed(readings, TOPO_NOW)
    for (rule_id, subject), evs in events.items():
        if rule_id != "pm25-count":
            continue
        by_id = {r.event_id: r for r in readings}
        for e in evs:
            if e.action == A.open:
                ids = e.incident.evidence.event_ids
                assert len(ids) == 3
                assert all(by_id[i].value > 75 and by_id[i].sensor_id == subject for i in ids)
                assert e.incident.incident_id.startswith("inc-")
    assert state_key("r", "s") == "r|s"
