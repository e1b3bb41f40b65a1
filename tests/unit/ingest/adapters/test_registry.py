"""The adapter registry: discovery, header values, detection order, a new format end to end."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline.ingest import adapters
from pipeline.ingest.adapters import registry
from pipeline.ingest.adapters.base import Adapter, Observation, ParseOutput
from pipeline.ingest.adapters.registry import (
    FORMAT_HEADER,
    FORMATS,
    AdapterRegistry,
    HeaderError,
    detect_format,
    discover,
    format_from_headers,
    parse_document,
)
from tests.unit.ingest.norm_world import run

V2 = {"id": "aq-001", "type": "AirQualityObserved", "dateObserved": "2026-05-01T00:00Z", "pm25": 3}
LD = {**V2, "id": "urn:ngsi-ld:AirQualityObserved:aq-001"}
CANONICAL = {
    "sensor_id": "aq-001",
    "metric": "pm25",
    "value": 1,
    "observed_at": "2026-05-01T00:00Z",
}
STA = {"result": 1, "phenomenonTime": "2026-05-01T00:00:00Z", "Datastream": {"@iot.id": 42}}


BUILT_IN = ("canonical", "ngsi-v2", "ngsi-ld", "sensorthings", "open311")


def test_formats_are_listed_in_the_order_users_see() -> None:
    """The built-in formats, in this order; a new format's module takes its place by its own
    `order` without this test changing (docs/extending.md)."""
    assert tuple(fmt for fmt in FORMATS if fmt in BUILT_IN) == BUILT_IN


@pytest.mark.parametrize(
    ("declared", "fmt"),
    [
        ("canonical", "canonical"),
        ("cityops", "canonical"),
        ("ngsi", "ngsi"),
        ("ngsi-v2", "ngsi-v2"),
        ("ngsiv2", "ngsi-v2"),
        ("ngsi-ld", "ngsi-ld"),
        ("ngsild", "ngsi-ld"),
        ("sensorthings", "sensorthings"),
        ("sta", "sensorthings"),
        ("open311", "open311"),
        ("georeport", "open311"),
        ("georeport-v2", "open311"),
        (" GeoReport-V2 ", "open311"),
    ],
)
def test_every_header_value_names_its_format(declared: str, fmt: str) -> None:
    assert format_from_headers([(FORMAT_HEADER, declared.encode())]) == fmt


def test_an_unknown_header_value_is_refused_and_the_header_beats_content_type() -> None:
    with pytest.raises(HeaderError, match="names no known format: 'csv'"):
        format_from_headers({FORMAT_HEADER: "CSV"})
    declared = [("Content-Type", b"application/ld+json"), (FORMAT_HEADER, b"sta")]
    assert format_from_headers(declared) == "sensorthings"
    assert format_from_headers({"content-type": "application/json"}) is None


@pytest.mark.parametrize(
    ("doc", "fmt"),
    [
        ({**V2, **CANONICAL}, "canonical"),  # canonical is asked first
        ({**V2, **STA, "service_request_id": "1"}, "sensorthings"),  # then SensorThings
        ({**V2, "service_request_id": "1"}, "open311"),  # then Open311, then NGSI
        ({"subscriptionId": "s", "data": [V2], "value": [STA]}, "ngsi-v2"),  # envelope order
        ({"value": [CANONICAL]}, "canonical"),  # an envelope is opened whoever reads it
        ({"subscriptionId": "s", "data": [{"x": 1}]}, "ngsi-v2"),  # the envelope claims it
        ({"subscriptionId": "s"}, "ngsi-v2"),
        ({"subscriptionId": "s", "data": []}, None),
        ({"subscriptionId": "s", "data": [1]}, None),
        ([LD, V2], "ngsi-ld"),  # a batch is named by its first element
        ([], None),
        ({"x": 1}, None),
    ],
)
def test_detection_order_and_envelopes(doc: Any, fmt: str | None) -> None:
    assert detect_format(doc) == fmt


def test_the_ngsi_header_leaves_the_flavour_to_each_entity() -> None:
    out = parse_document({"subscriptionId": "s", "data": [V2, LD]}, "ngsi")
    assert [item.source_format for item in out.items] == ["ngsi-v2", "ngsi-ld"]
    assert [item.group for item in out.items if isinstance(item, Observation)] == [0, 1]
    assert "ngsi" not in FORMATS


def _adapter(name: str, priority: int | None, aliases: tuple[str, ...] = ()) -> Adapter:
    def parse(doc: Any, out: ParseOutput, group: int) -> None:
        del doc, out, group

    return Adapter(name=name, priority=priority, aliases=aliases, parse=parse)


@pytest.mark.parametrize(
    ("clash", "message"),
    [
        ((_adapter("a", 1), _adapter("a", 2)), "two adapters are named 'a'"),
        ((_adapter("a", 1, ("x",)), _adapter("b", 2, ("X",))), "'X' names both 'a' and 'b'"),
        ((_adapter("a", 1), _adapter("b", 2, ("a",))), "'a' names both 'a' and 'b'"),
        ((_adapter("a", 3), _adapter("b", 3)), "'a' and 'b' share detection priority 3"),
    ],
)
def test_the_registry_refuses_ambiguous_adapters(clash: tuple[Adapter, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdapterRegistry(clash)


def test_discovery_finds_exactly_the_format_modules() -> None:
    found = discover(adapters)
    assert tuple(a.name for a in found if a.priority is not None) == FORMATS
    assert [a.name for a in found if a.priority is None] == ["ngsi"]


# A format nobody wrote an adapter for (SenML, RFC 8428), as its author would: this module
# and nothing else. The test below drops it next to the real adapters.
SENML = '''
"""SenML records (RFC 8428): base name, name, unit, value, time in seconds."""

from datetime import UTC, datetime
from typing import Any

from pipeline.ingest.adapters.base import (
    Adapter, Observation, ParseOutput, SchemaError, as_number, as_text,
)


def looks_like(doc: Any) -> bool:
    return "bn" in doc and "n" in doc and "v" in doc


def parse(doc: Any, out: ParseOutput, group: int) -> None:
    if not isinstance(doc, dict):
        raise SchemaError("expected a SenML record")
    out.items.append(Observation(
        sensor_ids=(str(as_text(doc.get("bn"), "bn")),),
        metric=str(as_text(doc.get("n"), "n")),
        value=as_number(doc.get("v"), "v"),
        unit=as_text(doc.get("u"), "u", required=False),
        observed_at=datetime.fromtimestamp(as_number(doc.get("t"), "t"), UTC),
        source_format="senml",
        group=group,
    ))


ADAPTERS = (
    Adapter(name="senml", priority=50, aliases=("senml+json",), content_types=("senml+json",),
            looks_like=looks_like, parse=parse),
)
'''
RECORD = {"bn": "aq-001", "n": "pm25", "u": "ug/m3", "v": 35.5, "t": 1777593600}


@pytest.fixture
def with_senml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdapterRegistry]:
    """The adapters package with one more module in it, and a registry discovered from it."""
    (tmp_path / "senml.py").write_text(SENML, encoding="utf-8")
    monkeypatch.setattr(adapters, "__path__", [*adapters.__path__, str(tmp_path)])
    importlib.invalidate_caches()
    try:
        yield AdapterRegistry(discover(adapters))
    finally:
        module: ModuleType | None = sys.modules.pop(f"{adapters.__name__}.senml", None)
        if module is not None:
            delattr(adapters, "senml")


def test_a_new_format_is_one_module(
    with_senml: AdapterRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert with_senml.formats == (*FORMATS, "senml")
    assert with_senml.detect([RECORD, RECORD]) == "senml"
    assert with_senml.detect(CANONICAL) == "canonical"
    assert with_senml.from_headers({FORMAT_HEADER: "SenML+JSON"}) == "senml"
    assert with_senml.from_headers({"Content-Type": "application/senml+json"}) == "senml"
    out = with_senml.parse([RECORD, {"bn": "aq-002", "v": 1}], "senml")
    [observation] = out.items
    assert isinstance(observation, Observation)
    assert observation.observed_at == datetime(2026, 5, 1, tzinfo=UTC)
    assert [problem.detail for problem in out.problems] == ["[1] n: missing"]

    # and through the whole normalization step, once the pipeline's registry is this one
    monkeypatch.setattr(registry, "REGISTRY", with_senml)
    result = run([RECORD])
    assert result.rejections == []
    assert result.format == "senml"
    [reading] = result.readings
    assert (reading.sensor_id, reading.metric, reading.value) == ("aq-001", "pm25", 35.5)
    assert reading.source_format == "senml"
