"""The threshold step: every rule shape, hysteresis, upgrades, area windows, event time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.models import AdminCodes, IncidentKind, IncidentState, Severity
from pipeline.rules.detection import (
    MAX_EVENT_IDS,
    Detector,
    incident_id,
    new_state,
    state_key,
    step,
    subject_for,
)
from pipeline.rules.detection import advance as advance_state
from tests.unit.rules.detect_world import (
    BASE,
    CITY,
    HUANGPU,
    NANJING_EAST,
    T0,
    reading,
    topology,
    with_lateness,
)
from tests.unit.rules.detection.drive import A, actions, only, run

# --------------------------------------------------------------------------- above / count


def test_above_count_opens_on_the_nth_consecutive_breach() -> None:
    events = run([reading("aq-1", 0, 80), reading("aq-1", 1, 90), reading("aq-1", 2, 100)])
    assert actions(events) == [(A.open, Severity.blue)]
    inc = events[0].incident
    assert inc.incident_id == incident_id("pm25-count", "aq-1", T0.isoformat())
    assert inc.incident_id.startswith("inc-") and len(inc.incident_id) == 20
    assert inc.kind == IncidentKind.threshold_breach and inc.state == IncidentState.open
    assert inc.rule_id == "pm25-count" and inc.subject == "aq-1" and inc.metric == "pm25"
    ev = inc.evidence
    assert ev.event_ids == ("aq-1-pm25-0", "aq-1-pm25-1", "aq-1-pm25-2")
    assert (ev.peak_value, ev.threshold, ev.count) == (100, 75, 3)
    assert (ev.first_at, ev.last_at) == (T0, T0 + timedelta(minutes=2))
    assert inc.opened_at == T0 + timedelta(minutes=2)
    assert inc.areas.street == NANJING_EAST and inc.areas.district == HUANGPU
    assert (inc.owner_level, inc.owner_area) == ("street", NANJING_EAST)
    assert inc.ack_due == inc.opened_at + timedelta(hours=8)  # blue SLA
    assert inc.resolve_due == inc.opened_at + timedelta(hours=72)


def test_threshold_itself_is_not_a_breach_and_a_dip_resets_the_streak() -> None:
    events = run(
        [
            reading("aq-1", 0, 80),
            reading("aq-1", 1, 90),
            reading("aq-1", 2, 75),
            reading("aq-1", 3, 80),
            reading("aq-1", 4, 80),
        ]
    )
    assert events == []
    events = run(
        [
            reading("aq-1", 0, 80),
            reading("aq-1", 1, 90),
            reading("aq-1", 2, 75),
            reading("aq-1", 3, 80),
            reading("aq-1", 4, 80),
            reading("aq-1", 5, 80),
        ]
    )
    assert actions(events) == [(A.open, Severity.blue)]
    assert events[0].incident.evidence.first_at == T0 + timedelta(minutes=3)


def test_open_takes_the_severity_of_the_completing_reading() -> None:
    events = run([reading("aq-1", 0, 80), reading("aq-1", 1, 300), reading("aq-1", 2, 160)])
    assert actions(events) == [(A.open, Severity.orange)]
    assert events[0].incident.evidence.peak_value == 300
    assert events[0].incident.evidence.threshold == 150


def test_upgrade_is_an_event_and_severity_never_goes_down_while_open() -> None:
    events = run(
        [
            reading("aq-1", 0, 80),
            reading("aq-1", 1, 80),
            reading("aq-1", 2, 80),
            reading("aq-1", 3, 120),
            reading("aq-1", 4, 260),
            reading("aq-1", 5, 90),
        ]
    )
    assert actions(events) == [
        (A.open, Severity.blue),
        (A.upgrade, Severity.yellow),
        (A.upgrade, Severity.red),
        (A.evidence, Severity.red),
    ]
    ids = {e.incident.incident_id for e in events}
    assert len(ids) == 1
    last = events[-1].incident.evidence
    assert (last.count, last.peak_value, last.threshold) == (6, 260, 250)
    assert last.last_at == T0 + timedelta(minutes=5)


def test_hysteresis_only_the_clear_value_resolves_and_the_next_breach_is_new() -> None:
    events = run(
        [
            reading("aq-1", 0, 80),
            reading("aq-1", 1, 80),
            reading("aq-1", 2, 80),
            reading("aq-1", 3, 70),  # below the blue level, above clear 60: stays open
            reading("aq-1", 4, 61),
            reading("aq-1", 5, 60),  # crosses clear
            reading("aq-1", 6, 80),
            reading("aq-1", 7, 80),
            reading("aq-1", 8, 80),
        ]
    )
    assert [e.action for e in events] == [A.open, A.auto_resolve, A.open]
    first, resolved, second = (e.incident for e in events)
    assert resolved.incident_id == first.incident_id
    assert resolved.updated_at == T0 + timedelta(minutes=5)
    assert second.incident_id != first.incident_id
    assert second.incident_id == incident_id(
        "pm25-count", "aq-1", (T0 + timedelta(minutes=6)).isoformat()
    )
    assert first.evidence.count == 3  # the readings in the band added no evidence


def test_evidence_event_ids_are_bounded() -> None:
    readings = [reading("aq-1", i, 100) for i in range(MAX_EVENT_IDS + 10)]
    events = run(readings)
    last = events[-1].incident.evidence
    assert last.count == MAX_EVENT_IDS + 10
    assert len(last.event_ids) == MAX_EVENT_IDS
    assert last.event_ids[0] == "aq-1-pm25-0"


def test_subjects_are_independent() -> None:
    events = run(
        [
            reading("aq-1", 0, 80),
            reading("aq-2", 0, 80),
            reading("aq-1", 1, 80),
            reading("aq-2", 1, 80),
            reading("aq-1", 2, 80),
            reading("aq-2", 2, 20),
        ]
    )
    assert [(e.action, e.incident.subject) for e in events] == [(A.open, "aq-1")]


# --------------------------------------------------------------------------- below / duration


def test_below_duration_opens_after_the_duration_of_event_time() -> None:
    events = run(
        [
            reading("wq-1", 0, 4.5, "do"),
            reading("wq-1", 5, 4.0, "do"),
            reading("wq-1", 9.99, 4.0, "do"),
            reading("wq-1", 10, 2.5, "do"),
        ],
        rule_id="do-low",
    )
    assert actions(events) == [(A.open, Severity.yellow)]
    ev = events[0].incident.evidence
    assert (ev.count, ev.peak_value, ev.threshold) == (4, 2.5, 3)
    assert events[0].incident.opened_at == T0 + timedelta(minutes=10)


def test_below_duration_streak_breaks_and_clears_with_hysteresis() -> None:
    events = run(
        [
            reading("wq-1", 0, 4, "do"),
            reading("wq-1", 5, 5, "do"),  # 5 is not below 5
            reading("wq-1", 6, 4, "do"),
            reading("wq-1", 16, 1.5, "do"),
            reading("wq-1", 20, 5.5, "do"),
            reading("wq-1", 25, 6, "do"),
        ],
        rule_id="do-low",
    )
    assert actions(events) == [(A.open, Severity.orange), (A.auto_resolve, Severity.orange)]
    assert events[0].incident.evidence.first_at == T0 + timedelta(minutes=6)


# --------------------------------------------------------------------------- outside


def test_outside_band_on_both_sides_with_band_clear() -> None:
    events = run(
        [
            reading("wq-1", 0, 9.5, "ph"),
            reading("wq-1", 1, 5.5, "ph"),  # open blue
            reading("wq-1", 2, 4.0, "ph"),  # below the orange band: upgrade
            reading("wq-1", 3, 6.2, "ph"),  # inside blue band, outside clear band: stays open
            reading("wq-1", 4, 8.5, "ph"),
        ],  # inside [6.5, 8.5]: clears
        rule_id="ph-band",
    )
    assert actions(events) == [
        (A.open, Severity.blue),
        (A.upgrade, Severity.orange),
        (A.auto_resolve, Severity.orange),
    ]
    opened = events[0].incident.evidence
    assert opened.peak_value == 9.5  # 5.5 is as far outside (0.5): the earlier peak stays
    assert opened.threshold == 6  # the violated bound of the completing reading
    assert events[1].incident.evidence.peak_value == 4.0
    assert events[1].incident.evidence.threshold == 5


# --------------------------------------------------------------------------- area windows


def test_area_mean_window_is_evaluated_when_it_closes() -> None:
    readings = [
        reading("aq-1", 1, 100),
        reading("aq-2", 2, 200),
        reading("aq-3", 9.9, 120),
        reading("aq-4", 3, 900),  # Xuhui: another subject
        reading("aq-1", 10, 10),  # next window, but aq-2 and aq-3 still hold [0, 10) open
        reading("aq-3", 10.5, 10),
    ]
    assert run(readings, rule_id="pm25-district") == []
    # [0, 10) closes once every sensor of Huangpu seen so far has passed it.
    events = run([*readings, reading("aq-2", 11, 10)], rule_id="pm25-district")
    assert actions(events) == [(A.open, Severity.yellow)]
    inc = events[0].incident
    assert inc.subject == HUANGPU and inc.subject_kind == "area"
    assert inc.evidence.peak_value == 140  # mean of 100, 200, 120
    assert inc.evidence.event_ids == ("aq-1-pm25-1", "aq-2-pm25-2", "aq-3-pm25-9.9")
    assert inc.opened_at == T0 + timedelta(minutes=10)
    assert inc.areas.district == HUANGPU and inc.areas.street is None
    assert (inc.owner_level, inc.owner_area) == ("district", HUANGPU)


def test_area_max_window_and_clear_and_advance() -> None:
    rule = dict(BASE["rules"][1], scope={"area": "city", "window": "10m", "statistic": "max"})
    topo = topology(rules=[rule])
    detector = Detector(topo)
    events = detector.run([reading("aq-1", 1, 100), reading("aq-4", 2, 300)])
    assert events == []  # the window is still open
    events = detector.advance(T0 + timedelta(minutes=10))
    assert actions(events) == [(A.open, Severity.red)]
    assert events[0].incident.subject == CITY
    assert (events[0].incident.owner_level, events[0].incident.owner_area) == ("city", CITY)
    events = detector.run([reading("aq-1", 11, 101)])
    assert detector.advance(T0 + timedelta(minutes=20)) == []  # 101 is between clear and yellow
    detector.run([reading("aq-1", 21, 100)])
    events = detector.advance(T0 + timedelta(minutes=30))
    assert [e.action for e in events] == [A.auto_resolve]
    # Late for a closed window: dropped and counted.
    assert detector.run([reading("aq-2", 5, 999)]) == []
    assert detector.states[state_key("pm25-district", CITY)].late == 1


def test_area_rule_skips_readings_without_that_level() -> None:
    topo = topology(**only("pm25-district"))
    rule = topo.rules[0]
    plain = reading("aq-1", 0, 100)
    no_district = plain.model_copy(update={"areas": AdminCodes(street=NANJING_EAST)})
    assert subject_for(no_district, rule, topo) is None
    assert subject_for(reading("aq-1", 0, 1), rule, topo) == HUANGPU
    assert subject_for(reading("wq-1", 0, 1, "ph"), rule, topo) is None


# --------------------------------------------------------------------------- event time


def test_out_of_order_within_lateness_is_evaluated_in_event_time_order() -> None:
    in_order = [
        reading("aq-1", 0, 80),
        reading("aq-1", 1, 80),
        reading("aq-1", 2, 80),
        reading("aq-1", 3, 50),
        reading("aq-1", 4, 80),
    ]
    shuffled = [in_order[i] for i in (1, 0, 3, 2, 4)]
    expected = run(in_order, lateness=120, flush=True)
    assert actions(expected) == [(A.open, Severity.blue), (A.auto_resolve, Severity.blue)]
    assert run(shuffled, lateness=120, flush=True) == expected
    # Without lateness the same arrival order drops the stragglers: no incident at all.
    assert run(shuffled, lateness=0, flush=True) == []


def test_late_and_duplicate_readings_are_dropped_and_counted() -> None:
    topo = with_lateness(60)
    rule = topo.rules[0]
    state = new_state(rule, "aq-1")
    for r in (reading("aq-1", 5, 80), reading("aq-1", 5, 80), reading("aq-1", 7, 80)):
        state, _ = step(state, r, rule, topo)
    assert state.late == 1  # the duplicate still in the buffer
    state, events = step(state, reading("aq-1", 4, 80), rule, topo)  # 3 min late > 60 s
    assert events == [] and state.late == 2
    state, _ = step(state, reading("aq-1", 5, 80), rule, topo)  # replay of an evaluated one
    assert state.late == 3


def test_buffered_readings_wait_for_the_watermark() -> None:
    topo = with_lateness(120)
    rule = topo.rules[0]
    state = new_state(rule, "aq-1")
    for minute in (0, 1, 2):
        state, events = step(state, reading("aq-1", minute, 80), rule, topo)
        assert events == []
    state, events = step(state, reading("aq-1", 4, 10), rule, topo)  # watermark 2 min
    assert actions(events) == [(A.open, Severity.blue)]
    assert [s.event_id for s in state.buffer] == ["aq-1-pm25-4"]


def test_advance_evaluates_the_buffer_and_refuses_older_readings() -> None:
    topo = with_lateness(300)
    rule = topo.rules[0]
    state = new_state(rule, "aq-1")
    for minute in (0, 1, 2):
        state, events = step(state, reading("aq-1", minute, 80), rule, topo)
        assert events == []  # all within the 5 min lateness: still buffered
    state, events = advance_state(state, T0 + timedelta(minutes=2), rule, topo)
    assert actions(events) == [(A.open, Severity.blue)]
    state, events = step(state, reading("aq-1", 1.5, 300), rule, topo)
    assert events == [] and state.late == 1
    assert state.watermark == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [("mean", 140.0), ("min", 100.0), ("max", 200.0), ("sum", 420.0), ("count", 3.0)],
)
def test_every_area_statistic(statistic: str, expected: float) -> None:
    rule = dict(
        BASE["rules"][1],
        scope={"area": "district", "window": "10m", "statistic": statistic},
        levels=[{"severity": "blue", "threshold": 0}],
        clear=-1,
    )
    detector = Detector(topology(rules=[rule]))
    detector.run([reading("aq-1", 1, 100), reading("aq-2", 2, 200), reading("aq-3", 3, 120)])
    [event] = detector.advance(T0 + timedelta(minutes=10))
    assert event.incident.evidence.peak_value == expected
