"""`/incidents` queries: filters, newest first, cursor pages, and a 400 reason for bad input."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from pipeline.engine.worker.incidents_api import RETRY_AFTER_SECONDS, IncidentQuery, unavailable
from pipeline.models import AdminCodes, Incident, IncidentState, Severity
from tests.unit.rules.detect_world import CITY, HUANGPU, NANJING_EAST, T0, WAITAN, XUHUI
from tests.unit.rules.incident_world import TOPO, make


def incident(n: int, street: str, severity: Severity, state: IncidentState) -> Incident:
    district = XUHUI if street == "" else HUANGPU
    areas = AdminCodes(district=district, street=street or None)
    return make(severity, areas, state).model_copy(
        update={"incident_id": f"inc-{n:016x}", "opened_at": T0 + timedelta(minutes=n)}
    )


INCIDENTS = [
    incident(1, NANJING_EAST, Severity.red, IncidentState.open),
    incident(2, WAITAN, Severity.yellow, IncidentState.acknowledged),
    incident(3, "", Severity.red, IncidentState.open),
    incident(4, NANJING_EAST, Severity.blue, IncidentState.closed),
]


def ids(params: dict[str, str]) -> list[str]:
    page = IncidentQuery.parse(params, TOPO).page(INCIDENTS, CITY)
    return [doc["incident_id"][-1] for doc in page["incidents"]]


def test_filters_match_the_area_state_and_severity_newest_first() -> None:
    assert ids({}) == ["4", "3", "2", "1"]
    assert ids({"area": CITY}) == ["4", "3", "2", "1"]
    assert ids({"area": HUANGPU}) == ["4", "2", "1"]
    assert ids({"area": NANJING_EAST, "state": "open,closed"}) == ["4", "1"]
    assert ids({"severity": "red"}) == ["3", "1"]
    assert ids({"area": XUHUI, "severity": "red", "state": "open"}) == ["3"]


def test_pages_follow_the_cursor_to_the_end() -> None:
    seen: list[str] = []
    params = {"limit": "3"}
    while True:
        page = IncidentQuery.parse(params, TOPO).page(INCIDENTS, CITY)
        seen += [doc["incident_id"] for doc in page["incidents"]]
        assert page["total"] == 4
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == [i.incident_id for i in reversed(INCIDENTS)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"area": "999999"}, "area: unknown area"),
        ({"state": "opened"}, "state: 'opened' is not one of"),
        ({"severity": "purple"}, "severity: 'purple'"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1e9"}, "limit"),
        ({"after": "!!!"}, "after: not a cursor"),
        ({"sort": "x"}, "unknown parameter 'sort'"),
    ],
)
def test_a_bad_parameter_is_refused_with_its_reason(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IncidentQuery.parse(params, TOPO)


def test_a_worker_that_rebalances_or_recovers_answers_unavailable() -> None:
    """Its table holds part of the incidents then: no partial list, no false 404."""
    settled = SimpleNamespace(rebalancing=False, tables=SimpleNamespace(recovery=None))
    assert unavailable(settled) is None
    for app in (
        SimpleNamespace(rebalancing=True, tables=SimpleNamespace(recovery=None)),
        SimpleNamespace(
            rebalancing=False, tables=SimpleNamespace(recovery=SimpleNamespace(in_recovery=True))
        ),
    ):
        body = unavailable(app)
        assert body is not None
        assert "rebalancing or reading its changelogs" in body["error"]
        assert body["retry_after_seconds"] == RETRY_AFTER_SECONDS
