"""The resolution step: catalogue, units, range, registry / geo, PII, event ids, dedup, size."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from pipeline.ingest.dedup import DuplicateFilter
from pipeline.ingest.normalize import Normalizer, event_id, normalize
from pipeline.models import AdminCodes, CitizenReport, GeoPoint, Reading, Rejection, RejectReason
from tests.unit.ingest.norm_world import city, reasons, run

T = "2026-05-01T08:00:00+08:00"
T_UTC = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def reading(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "sensor_id": "aq-001",
        "metric": "pm25",
        "value": 82,
        "observed_at": T,
    }
    doc.update(fields)
    return doc


def test_registered_sensor_gets_registry_place_and_canonical_unit() -> None:
    result = run(reading(value=0.082, unit="mg/m3"))
    assert result.format == "canonical"
    assert result.rejections == []
    [event] = result.events
    assert isinstance(event, Reading)
    assert event.value == pytest.approx(82.0)
    assert event.unit == "ug/m3"
    assert event.observed_at == T_UTC
    assert event.location == GeoPoint(lat=31.2385, lon=121.482)
    assert event.areas == AdminCodes(district="310101", street="310101002")
    assert event.source_format == "canonical"


def test_event_id_is_deterministic_when_the_source_gives_none() -> None:
    first = run(reading()).readings[0]
    again = run(reading()).readings[0]
    other = run(reading(value=83)).readings[0]
    assert first.event_id == again.event_id
    assert len(first.event_id) == 16
    assert first.event_id != other.event_id
    assert first.event_id == event_id("aq-001", "pm25", T_UTC.isoformat(), 82.0)
    assert run(reading(event_id="src-1")).readings[0].event_id == "src-1"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (reading(metric="radon"), "unknown_metric"),
        (reading(metric="noise_laeq"), "unknown_metric"),  # not registered for aq-001
        (reading(sensor_id="ghost-9"), "unknown_sensor"),
        (
            reading(sensor_id="ghost-9", location={"lat": 31.30, "lon": 121.48}),
            "outside_jurisdiction",
        ),
        (reading(unit="dB(A)"), "unit_not_convertible"),
        (reading(unit="furlongs"), "unit_not_convertible"),
        (reading(unit="ng/m3"), "unit_not_convertible"),  # convertible but not accepted
        (reading(value=-1), "out_of_range"),
        (reading(value=3, unit="mg/m3"), "out_of_range"),  # 3000 ug/m3 > 2000
        (reading(value=True), "schema_violation"),
        (reading(value="82"), "schema_violation"),
        (reading(observed_at="2026-05-01T08:00:00"), "schema_violation"),  # naive
        (reading(observed_at="yesterday"), "schema_violation"),
        (reading(sensor_id=""), "schema_violation"),
        (reading(location={"lat": 95, "lon": 0}), "schema_violation"),
    ],
)
def test_rejections_name_their_reason(doc: dict[str, object], reason: str) -> None:
    result = run(doc)
    assert result.events == []
    assert reasons(result) == [reason]
    assert result.rejections[0].detail


def test_unregistered_sensor_with_coordinates_is_placed_by_boundaries() -> None:
    result = run(reading(sensor_id="mobile-7", location={"lat": 31.24, "lon": 121.48}))
    [event] = result.readings
    assert event.sensor_id == "mobile-7"
    assert event.areas == AdminCodes(district="310101", street="310101002")
    assert event.location == GeoPoint(lat=31.24, lon=121.48)


def test_offset_units_convert_exactly() -> None:
    result = run(reading(metric="air_temperature", value=300.15, unit="K"))
    assert result.readings[0].value == pytest.approx(27.0)
    result = run(reading(metric="humidity", value=0.65, unit="1"))
    assert result.readings[0].value == pytest.approx(65.0)


def test_a_batch_keeps_good_elements_and_names_bad_ones() -> None:
    result = run([reading(), reading(value=-5), {"nope": 1}, reading(value=90)])
    assert [e.value for e in result.readings] == [82.0, 90.0]
    assert sorted(reasons(result)) == ["out_of_range", "schema_violation"]
    assert any(r.detail.startswith("[2]") for r in result.rejections)


def test_report_is_masked_placed_and_categorised() -> None:
    doc = {
        "report_id": "r-1",
        "channel": "hotline",
        "category": "gas_smell",
        "description": "楼道燃气味很重，联系13812345678",
        "reported_at": T,
        "location": {"lat": 31.24, "lon": 121.48},
    }
    [event] = run(doc).reports
    assert isinstance(event, CitizenReport)
    assert event.description == "楼道燃气味很重，联系138****5678"
    assert event.urgent is True
    assert event.category == "gas_smell"
    assert event.areas == AdminCodes(district="310101", street="310101002")
    assert event.reported_at == T_UTC


def test_report_by_area_code_and_without_place() -> None:
    base = {"report_id": "r-2", "category": "water_leak", "reported_at": T}
    [by_area] = run({**base, "area": "310101013"}).reports
    assert by_area.areas == AdminCodes(district="310101", street="310101013")
    assert by_area.urgent is False
    assert by_area.channel == "app"
    [nowhere] = run(base).reports
    assert nowhere.areas == AdminCodes()
    assert reasons(run({**base, "area": "999999"})) == ["outside_jurisdiction"]
    assert reasons(run({**base, "category": "aliens"})) == ["unknown_category"]
    assert reasons(run({**base, "location": {"lat": 10, "lon": 10}})) == ["outside_jurisdiction"]


def test_invalid_json_unknown_format_and_oversized() -> None:
    assert reasons(run(b"{not json")) == ["invalid_json"]
    assert reasons(run(b"\xff\xfe")) == ["invalid_json"]
    assert reasons(run({"hello": "world"})) == ["unknown_format"]
    assert reasons(run(b"42")) == ["unknown_format"]
    assert reasons(run(b"[]")) == ["unknown_format"]
    assert reasons(run(reading(), headers=[("cityops-format", b"csv")])) == ["unknown_format"]
    small = Normalizer(city(), max_message_bytes=64)
    raw = orjson.dumps(reading())
    assert len(raw) > 64
    assert [r.reason.value for r in small.normalize(raw).rejections] == ["oversized"]


def test_empty_batch_of_a_declared_format_is_a_schema_violation() -> None:
    assert reasons(run(b"[]", headers=[("cityops-format", b"canonical")])) == ["schema_violation"]


def test_duplicates_within_the_window_are_rejected() -> None:
    clock = [0.0]
    normalizer = Normalizer(city(), dedup=DuplicateFilter(60, 1000, clock=lambda: clock[0]))
    raw = orjson.dumps(reading())
    assert len(normalizer.normalize(raw).events) == 1
    again = normalizer.normalize(raw)
    assert again.events == []
    assert [r.reason.value for r in again.rejections] == ["duplicate"]
    clock[0] = 61.0
    assert len(normalizer.normalize(raw).events) == 1


def test_module_function_reuses_a_normalizer_per_topology() -> None:
    raw = orjson.dumps(reading())
    first = normalize(raw, (), topology=city(), source="cityops.t.sensors.raw")
    second = normalize(raw, None, topology=city())
    assert first.events == second.events
    assert len(first.events) == 1


def test_dedup_filter_is_bounded() -> None:
    dedup = DuplicateFilter(window=1000, max_entries=3, clock=lambda: 0.0)
    for ident in "abcd":
        assert dedup.seen(ident) is False
    assert len(dedup) == 3
    assert dedup.seen("a") is False  # forgotten: pushed out by the size bound
    assert dedup.seen("d") is True
    assert dedup.duplicates == 1
    with pytest.raises(ValueError, match="positive"):
        DuplicateFilter(window=0)


def test_dedup_forgets_by_age_and_by_size_in_arrival_order() -> None:
    """Ids seen at one time share a run; the size bound takes ids out of the oldest run,
    and the window then forgets exactly what is left of each run, in arrival order."""
    clock = [0.0]
    dedup = DuplicateFilter(window=10, max_entries=4, clock=lambda: clock[0])
    for ident in "abc":  # one run at t=0
        assert dedup.seen(ident) is False
    clock[0] = 5.0
    for ident in "de":  # a run at t=5; "a" is pushed out by the size bound
        assert dedup.seen(ident, clock[0]) is False
    assert len(dedup) == 4
    assert dedup.seen("a", 5.0) is False  # forgotten; seen again at t=5 (pushes "b" out)
    assert [dedup.seen(i, 5.0) for i in "cde"] == [True, True, True]
    clock[0] = 10.0  # the t=0 run ("c" left of it) expires; t=5 ids stay
    assert dedup.seen("c") is False
    assert [dedup.seen(i, 10.0) for i in "dea"] == [True, True, True]
    clock[0] = 15.0  # the t=5 run ("d", "e", "a") expires, "c" (t=10) stays
    assert len(dedup) == 4  # before expiry runs: d, e, a, c
    assert dedup.seen("c") is True
    assert len(dedup) == 1
    assert [dedup.seen(i, 15.0) for i in "dea"] == [False, False, False]


_Z = "2026-05-01T00:00:00.000000Z"
_FAST_CASES = [
    (reading(observed_at=_Z), "row"),
    (reading(observed_at=_Z, value=0.082, unit="mg/m3"), "row"),
    (reading(observed_at=_Z, event_id="src-7"), "row"),
    (reading(observed_at=_Z, metric="radon"), "rejection"),
    (reading(observed_at=_Z, sensor_id="ghost-9"), "rejection"),
    (reading(observed_at=_Z, value=1e9), "rejection"),
    (reading(), "declined"),  # a time not in UTC
    (reading(observed_at=_Z, lat=31.2, lon=121.4), "declined"),  # a location
    (reading(observed_at=_Z, value="82"), "declined"),  # a string value
    ([reading(observed_at=_Z)], "declined"),  # a canonical array
    ({"id": "urn:x", "type": "AirQualityObserved"}, "declined"),  # another format
    (b"{not json", "declined"),
]


@pytest.mark.parametrize(("doc", "expected"), _FAST_CASES, ids=range(len(_FAST_CASES)))
def test_the_fast_reading_path_gives_normalizes_answer_or_declines(
    doc: object, expected: str
) -> None:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    fast = Normalizer(city(), dedup=DuplicateFilter(window=60)).fast_reading(raw, None, None, 0.0)
    full = Normalizer(city(), dedup=DuplicateFilter(window=60)).normalize(raw, None, now=0.0)
    if expected == "declined":
        assert fast is None
    elif expected == "rejection":
        assert isinstance(fast, Rejection)
        assert full.rejections == [fast] and full.items == []
    else:
        assert full.rows == [fast] and full.rejections == []
        assert full.format == "canonical"


def test_the_fast_reading_path_dead_letters_a_duplicate_and_declines_a_format_header() -> None:
    norm = Normalizer(city(), dedup=DuplicateFilter(window=60))
    raw = orjson.dumps(reading(observed_at=_Z, event_id="src-8"))
    first = norm.fast_reading(raw, None, None, 0.0)
    assert isinstance(first, tuple) and first.event_id == "src-8"
    again = norm.fast_reading(raw, None, None, 1.0)
    assert again == Rejection(reason=RejectReason.duplicate, detail="src-8")
    assert norm.fast_reading(raw, [("cityops-format", b"canonical")], None, 2.0) is None
    assert norm.fast_reading(b"x" * (norm.max_message_bytes + 1), None, None, 3.0) is None
