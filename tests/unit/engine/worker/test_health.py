"""Readiness: every check must pass; each failing check says why. Liveness: only a crash."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from faust.types import TP

from pipeline.engine.worker.health import (
    Signals,
    consumer_view,
    liveness,
    readiness,
    signals_of,
)

READY = Signals(
    assigned=3,
    recovering=False,
    intake_state="running",
    intake_assigned=3,
    store_ready=True,
    store_failing=False,
    stopping=False,
)


def test_a_working_worker_is_ready() -> None:
    state = readiness(READY)
    assert state.ready
    assert set(state.checks) == {"partitions", "recovery", "intake", "store", "running"}
    assert state.as_json()["ready"] is True


@pytest.mark.parametrize(
    ("change", "failing", "detail"),
    [
        ({"assigned": 0}, "partitions", "0 partitions assigned"),
        ({"recovering": True}, "recovery", "rebalancing or recovering tables"),
        ({"intake_state": "init"}, "intake", "the raw intake is init"),
        ({"intake_state": "crashed"}, "intake", "the raw intake is crashed"),
        ({"store_ready": False}, "store", "not initialised yet"),
        ({"store_failing": True}, "store", "the last write failed"),
        ({"stopping": True}, "running", "stopping"),
    ],
)
def test_each_failing_check_makes_the_worker_unready_and_says_why(
    change: dict[str, object], failing: str, detail: str
) -> None:
    state = readiness(dataclasses.replace(READY, **change))  # type: ignore[arg-type]  # test values
    assert not state.ready
    body = state.as_json()
    assert [name for name, check in body["checks"].items() if not check["ok"]] == [failing]
    assert body["checks"][failing]["detail"].startswith(detail)


def test_the_intake_reports_its_partitions_without_requiring_them() -> None:
    state = readiness(dataclasses.replace(READY, intake_assigned=0))
    assert state.ready
    assert state.checks["intake"].detail == "running, 0 raw partitions assigned"


def test_the_body_gives_the_partitions_held_as_numbers() -> None:
    state = readiness(dataclasses.replace(READY, assigned=7, intake_assigned=3))
    assert state.as_json()["assigned"] == {"agents": 7, "raw": 3}


def test_a_store_that_recovers_makes_the_worker_ready_again() -> None:
    failing = dataclasses.replace(READY, store_failing=True)
    assert not readiness(failing).ready
    assert readiness(dataclasses.replace(failing, store_failing=False)).ready


def test_liveness_fails_only_once_the_app_crashed() -> None:
    assert liveness(SimpleNamespace(crashed=False)) == ({"alive": True}, 200)
    body, status = liveness(SimpleNamespace(crashed=True))
    assert (body["alive"], status) == (False, 503)


def test_signals_are_read_from_the_app_the_intake_and_the_writer() -> None:
    app = SimpleNamespace(
        assignor=SimpleNamespace(assigned_actives=lambda: {("t", 0), ("t", 1)}),
        rebalancing=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(in_recovery=True)),
        should_stop=False,
    )
    intake = SimpleNamespace(state="running", consumer=SimpleNamespace(assignment=lambda: {1}))
    writer = SimpleNamespace(ready=True, failing=False)
    assert signals_of(app, intake, writer) == dataclasses.replace(
        READY, assigned=2, recovering=True, intake_assigned=1
    )
    before_start = SimpleNamespace(state="init", consumer=None)
    assert signals_of(app, before_start, writer).intake_assigned == 0


def test_the_consumer_view_tells_a_partition_never_fetched_from_one_read() -> None:
    """`/consumer`: input partitions only (changelogs left out), each with the end offset
    its last fetch saw, the last offset handed to the agents, and whether it is paused."""
    readings0, readings1, changelog = TP("x.readings", 0), TP("x.readings", 1), TP("w-c", 0)
    ends = {readings0: 7}
    consumer = SimpleNamespace(
        assignment=lambda: {readings0, readings1, changelog},
        highwater=lambda tp: ends.get(tp),
        _paused_partitions={readings1},
        _read_offset={readings0: 6},
        flow_active=True,
    )
    app = SimpleNamespace(consumer=consumer, tables=SimpleNamespace(changelog_topics={"w-c"}))
    assert consumer_view(app) == {
        "partitions": {
            "x.readings:0": {"end": 7, "read": 6, "paused": False},
            "x.readings:1": {"end": None, "read": None, "paused": True},
        },
        "flow_active": True,
    }
    assert consumer_view(SimpleNamespace(consumer=None)) == {"partitions": {}, "flow_active": None}
