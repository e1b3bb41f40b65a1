"""Canonical event models: UTC normalization, finiteness, ordering, bounds, JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pipeline.models import (
    MAX_EVIDENCE_IDS,
    SCHEMA_VERSION,
    AdminCodes,
    AggregateRow,
    AreaLevel,
    AuditEvent,
    CitizenReport,
    DeadLetter,
    Evidence,
    GeoPoint,
    Incident,
    IncidentAction,
    IncidentKind,
    IncidentState,
    IncidentUpdate,
    Reading,
    Rejection,
    RejectReason,
    Severity,
    trusted_row,
)

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=SHANGHAI)


def _reading(**overrides: object) -> Reading:
    data: dict[str, object] = {
        "event_id": "e1",
        "sensor_id": "aq-1",
        "metric": "pm25",
        "value": 82.5,
        "unit": "ug/m3",
        "observed_at": T0,
    }
    data.update(overrides)
    return Reading.model_validate(data)


def _incident(**overrides: object) -> Incident:
    data: dict[str, object] = {
        "incident_id": "inc-1",
        "rule_id": "pm25-1h",
        "kind": "threshold_breach",
        "severity": "orange",
        "subject": "aq-1",
        "subject_kind": "sensor",
        "metric": "pm25",
        "evidence": {
            "event_ids": ["e1"],
            "peak_value": 160.0,
            "threshold": 150.0,
            "first_at": T0,
            "last_at": T0,
            "count": 3,
        },
        "owner_level": "street",
        "owner_area": "310101002",
        "areas": {"district": "310101", "street": "310101002"},
        "opened_at": T0,
        "updated_at": T0,
    }
    data.update(overrides)
    return Incident.model_validate(data)


def test_reading_time_is_converted_to_utc() -> None:
    reading = _reading(observed_at="2026-05-01T08:00:00+08:00")
    assert reading.observed_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert reading.observed_at.utcoffset() == timedelta(0)
    assert reading.schema_version == SCHEMA_VERSION == 1


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        _reading(observed_at="2026-05-01T08:00:00")
    with pytest.raises(ValidationError):
        _reading(observed_at=datetime(2026, 5, 1, 8, 0))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_reading_value_must_be_finite(value: float) -> None:
    with pytest.raises(ValidationError):
        _reading(value=value)


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    reading = _reading()
    with pytest.raises(ValidationError):
        reading.value = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        _reading(colour="red")


@pytest.mark.parametrize(("lat", "lon"), [(91, 0), (-91, 0), (0, 181), (0, -180.5)])
def test_geopoint_bounds(lat: float, lon: float) -> None:
    with pytest.raises(ValidationError):
        GeoPoint(lat=lat, lon=lon)


def test_reading_json_round_trip() -> None:
    reading = _reading(
        location={"lat": 31.23, "lon": 121.48}, areas={"district": "310101", "street": "310101002"}
    )
    again = Reading.model_validate_json(reading.model_dump_json())
    assert again == reading
    assert again.areas == AdminCodes(district="310101", street="310101002")


def test_severity_is_ordered_by_rank_not_alphabet() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3]
    assert Severity.blue < Severity.yellow < Severity.orange < Severity.red
    assert Severity.red > Severity.yellow  # alphabetically "red" < "yellow"
    assert not Severity.orange < Severity.yellow  # alphabetically "orange" < "yellow"
    assert Severity.blue <= Severity.blue >= Severity.blue
    assert max([Severity.yellow, Severity.red, Severity.orange]) is Severity.red
    assert sorted([Severity.red, Severity.blue, Severity.yellow, Severity.orange]) == [
        Severity.blue,
        Severity.yellow,
        Severity.orange,
        Severity.red,
    ]
    assert Severity("red") == "red"
    assert {Severity.red: 1}["red"] == 1


def test_enumerations_have_the_contract_values() -> None:
    assert [level.value for level in AreaLevel] == [
        "city",
        "district",
        "street",
        "grid",
        "community",
    ]
    assert [level.depth for level in AreaLevel] == [0, 1, 2, 3, 4]
    assert {s.value for s in IncidentState} == {
        "open",
        "dispatched",
        "acknowledged",
        "resolved",
        "closed",
    }
    assert {k.value for k in IncidentKind} == {
        "threshold_breach",
        "report_cluster",
        "urgent_report",
    }
    assert {a.value for a in IncidentAction} >= {
        "dispatch",
        "acknowledge",
        "resolve",
        "close",
        "reopen",
        "comment",
        "escalate",
        "auto_resolve",
        "upgrade",
        "open",
    }
    assert {r.value for r in RejectReason} >= {
        "invalid_json",
        "unknown_format",
        "schema_violation",
        "unknown_sensor",
        "unknown_metric",
        "unit_not_convertible",
        "out_of_range",
        "outside_jurisdiction",
        "oversized",
        "duplicate",
        "invalid_transition",
        "unknown_incident",
    }


def test_incident_defaults_and_evidence_bound() -> None:
    incident = _incident()
    assert incident.state is IncidentState.open
    assert incident.version == 1
    assert incident.escalations == 0
    assert incident.severity is Severity.orange
    assert incident.owner_level is AreaLevel.street
    ids = tuple(f"e{i}" for i in range(MAX_EVIDENCE_IDS + 25))
    evidence = Evidence(event_ids=ids, first_at=T0, last_at=T0, count=len(ids))
    assert len(evidence.event_ids) == MAX_EVIDENCE_IDS == 50
    assert evidence.event_ids[-1] == ids[-1]
    assert evidence.event_ids[0] == f"e{25}"
    assert evidence.count == 75


def test_incident_subject_kind_is_sensor_or_area() -> None:
    with pytest.raises(ValidationError):
        _incident(subject_kind="building")


def test_evidence_peak_must_be_finite() -> None:
    with pytest.raises(ValidationError):
        Evidence(peak_value=float("nan"), first_at=T0, last_at=T0)


def test_incident_update_and_audit_event() -> None:
    update = IncidentUpdate(
        update_id="u1", incident_id="inc-1", action=IncidentAction.dispatch, unit="310101", at=T0
    )
    assert update.at.tzinfo is UTC
    assert update.note is None
    audit = AuditEvent(
        incident_id="inc-1",
        seq=1,
        action=IncidentAction.open,
        actor="detect",
        at=T0,
        from_state=None,
        to_state=IncidentState.open,
        prev_hash="0" * 64,
        hash="a" * 64,
    )
    assert AuditEvent.model_validate_json(audit.model_dump_json()) == audit
    with pytest.raises(ValidationError):
        AuditEvent(
            incident_id="inc-1",
            seq=0,
            action="open",
            actor="x",
            at=T0,
            from_state=None,
            to_state="open",
            prev_hash="0" * 64,
            hash="zz",
        )


def test_aggregate_row_refuses_non_finite_statistics() -> None:
    row = AggregateRow(
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        level="district",
        area_code="310101",
        metric="pm25",
        count=2,
        sum=10.0,
        min=4.0,
        max=6.0,
        mean=5.0,
    )
    assert row.breaches == 0
    with pytest.raises(ValidationError):
        AggregateRow(
            window_start=T0,
            window_end=T0,
            level="city",
            area_code="310000",
            metric="pm25",
            count=0,
            sum=0.0,
            min=float("inf"),
            max=0.0,
            mean=0.0,
        )


def test_a_trusted_row_is_the_row_validation_gives() -> None:
    """`trusted_row` skips validation for speed: the row it builds must be the one
    validation builds from the same fields (times in UTC, as a window's state gives them),
    in every way the sinks and the API use it."""
    start = T0.astimezone(UTC)
    fields = {
        "window_start": start, "window_end": start + timedelta(minutes=1),
        "level": AreaLevel.grid, "area_code": "8931aa2b2a3ffff", "metric": "pm25",
        "count": 3, "sum": 10.5, "min": 1.5, "max": 6.0, "mean": 3.5, "breaches": 1,
    }  # fmt: skip
    validated = AggregateRow.model_validate(fields)
    trusted = trusted_row(dict(fields))
    assert trusted == validated
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert trusted.schema_version == validated.schema_version
    assert hash(trusted) == hash(validated)
    assert trusted.model_copy(update={"min": 1.0}) == validated.model_copy(update={"min": 1.0})
    assert trusted.model_fields_set == validated.model_fields_set
    trusted.model_copy(update={"schema_version": 9})  # rows share one set: a copy has its own
    assert trusted_row(dict(fields)).model_fields_set == validated.model_fields_set
    with pytest.raises(ValidationError):  # still frozen
        trusted.count = 4  # type: ignore[misc]


def test_dead_letter_carries_bytes_as_base64() -> None:
    original = b"\xff\x00not json"
    letter = DeadLetter(
        reason=RejectReason.invalid_json, detail="bad", original=original, received_at=T0
    )
    text = letter.model_dump_json()
    assert '"original":"/wBub3QganNvbg=="' in text
    assert DeadLetter.model_validate_json(text).original == original


def test_citizen_report_and_rejection() -> None:
    report = CitizenReport(
        report_id="r1",
        channel="app",
        category="water_leak",
        description="漏水",
        reported_at=T0,
        urgent=True,
    )
    assert report.areas == AdminCodes()
    assert report.reported_at.tzinfo is UTC
    rejection = Rejection(reason=RejectReason.out_of_range, detail="pm25=99999")
    assert rejection.reason == "out_of_range"
