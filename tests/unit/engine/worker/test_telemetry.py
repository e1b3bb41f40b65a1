"""Metric labels mean what the dashboards, alerts and docs say: an SLA breach names the
level that missed the deadline, and a dead letter the stage that refused the record."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from pipeline.engine.emit import Emit, Record
from pipeline.engine.routing import Pipeline
from pipeline.engine.stages import LifecycleStage
from pipeline.engine.worker.telemetry import (
    DEAD_LETTER_STAGES,
    UnmappedAttributes,
    count_emit,
    count_sla_breach,
    missed_level,
    preset_children,
)
from pipeline.engine.worker.wiring import STAGE_OF
from pipeline.ingest.normalize import Unmapped
from pipeline.metrics import Metrics
from pipeline.topology import Topology, load_topology
from tests.support.paths import DEMO
from tests.support.store_rows import T0, incident


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(DEMO)


def _escalations(stage: LifecycleStage, minutes: int) -> list[Emit]:
    city = stage.topology.topics.name("incidents_city")
    return [
        emit
        for emit in stage.check_deadlines(T0 + timedelta(minutes=minutes))
        if emit.kind == "incident" and emit.reason == "escalate" and emit.topic == city
    ]


def test_an_sla_breach_counts_the_level_that_missed_it(topology: Topology) -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    stage = LifecycleStage(topology, {})
    opened = incident(opened_at=T0, updated_at=T0, ack_due=T0 + timedelta(minutes=1))
    events = orjson.dumps([opened.model_dump(mode="json")])
    topic = topology.topics.name("incident_events")
    stage.on_incident_events(Record(topic, None, events, (), 0, 0))

    (to_district,) = _escalations(stage, 2)  # the street let the ack deadline pass
    assert orjson.loads(to_district.value)["owner_level"] == "district"
    count_sla_breach(metrics, to_district, topology)
    (to_city,) = _escalations(stage, 10)  # then the district did
    assert orjson.loads(to_city.value)["owner_level"] == "city"
    count_sla_breach(metrics, to_city, topology)
    assert _escalations(stage, 60) == []  # the city is the top: nobody above to escalate to

    def breaches(level: str) -> float | None:
        labels = {"severity": "red", "level": level}
        return registry.get_sample_value("cityops_sla_breaches_total", labels)

    assert (breaches("street"), breaches("district"), breaches("city")) == (1.0, 1.0, None)


def test_missed_level_of_a_district_owned_incident_and_of_strangers(topology: Topology) -> None:
    district_rule = {"owner_area": "310000", "areas": {"district": "310101", "street": None}}
    assert missed_level(district_rule, topology) == "district"
    unknown = {"owner_area": "310000", "areas": {"district": "999999"}}
    assert missed_level(unknown, topology) == "unknown"
    assert missed_level({"owner_area": "310101"}, topology) == "unknown"


def test_presets_cover_the_levels_that_can_miss(topology: Topology) -> None:
    registry = CollectorRegistry()
    preset_children(Metrics.create(registry), topology)
    levels = {
        sample.labels["level"]
        for family in registry.collect()
        if family.name == "cityops_sla_breaches"
        for sample in family.samples
    }
    assert levels == {"street", "district"}


def _refused(topology: Topology) -> dict[str, list[Record]]:
    """A record each stage refuses, by the stage that should name the dead letter."""
    name = topology.topics.name
    bad_update = orjson.dumps(
        {"update_id": "u1", "incident_id": "nope", "action": "acknowledge",
         "unit": "310101002", "at": T0.isoformat()}
    )  # fmt: skip
    return {
        "normalize": [Record(name("raw_sensors"), None, b"{not json", (), 0, 1, 1)],
        "analyze": [
            Record(name("readings"), b"310101", b'{"schema_version": 2}', (), 0, 2),
            Record(name("reports"), b"310101", b"[]", (), 0, 3),
        ],
        "lifecycle": [
            Record(name("incident_updates"), b"nope", bad_update, (), 0, 4),
            Record(name("incident_updates"), None, b"{", (), 0, 5),
            Record(name("incident_events"), b"x", b'[{"incident_id": 1}]', (), 0, 6),
        ],
    }


def test_every_dead_letter_producer_labels_its_stage(topology: Topology) -> None:
    backing: dict[str, dict[str, Any]] = {}
    pipeline = Pipeline(topology, lambda table: backing.setdefault(table, {}))
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    refused = _refused(topology)
    assert set(refused) == set(DEAD_LETTER_STAGES) == set(STAGE_OF.values())
    for stage, records in refused.items():
        group = next(g for g, s in STAGE_OF.items() if s == stage)
        assert {pipeline.routes[r.topic].group for r in records} == {group}
        for record in records:
            (letter,) = [e for e in pipeline.handle([record]).emits if e.kind == "deadletter"]
            assert orjson.loads(letter.value)["stage"] == stage
            # counted by another consumer's label, it still counts under its own stage
            count_emit(metrics, letter, "elsewhere")
        total = sum(
            s.value
            for family in registry.collect()
            if family.name == "cityops_dead_letters"
            for s in family.samples
            if s.name.endswith("_total") and s.labels["stage"] == stage
        )
        assert total == len(records), stage


def _unmapped_total(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["format"], s.labels["attribute"]): s.value
        for family in registry.collect()
        if family.name == "cityops_unmapped_attributes"
        for s in family.samples
        if s.name == "cityops_unmapped_attributes_total"
    }


def test_unmapped_attributes_are_counted_and_logged_once_per_sensor_and_attribute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    unmapped = UnmappedAttributes(Metrics.create(registry))
    aqi = Unmapped("ngsi-v2", "aq-001", "airQualityIndex", "aqi")
    other_sensor = aqi._replace(sensor="aq-002")
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest.normalize"):
        unmapped.count(Counter({aqi: 3}))
        unmapped.count(Counter({aqi: 2, other_sensor: 1}))
    assert _unmapped_total(registry) == {("ngsi-v2", "airQualityIndex"): 6.0}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "sensor aq-001: ngsi-v2 attribute 'airQualityIndex' (catalogue name 'aqi')" in lines[0]
    assert lines[1].startswith("sensor aq-002:")
    assert [getattr(r, "sensor_id", None) for r in caplog.records] == ["aq-001", "aq-002"]


def test_unmapped_attribute_labels_and_logged_pairs_are_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    unmapped = UnmappedAttributes(Metrics.create(registry), max_labels=2, max_logged=2)
    names = ["a", "b", "c", "d"]
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest.normalize"):
        unmapped.count(Counter(Unmapped("ngsi-ld", "s1", n, n) for n in names))
        unmapped.count(Counter([Unmapped("ngsi-ld", "s1", "a", "a")]))  # forgotten: again
    assert _unmapped_total(registry) == {
        ("ngsi-ld", "a"): 2.0, ("ngsi-ld", "b"): 1.0, ("ngsi-ld", "other"): 2.0,
    }  # fmt: skip
    assert len(caplog.records) == 5
    assert len(unmapped._logged) == 2  # noqa: SLF001 - the bound itself
