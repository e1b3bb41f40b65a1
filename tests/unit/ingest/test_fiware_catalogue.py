"""FIWARE attributes land on the sample catalogue's metrics (issue 15: O2 beside pH)."""

from __future__ import annotations

import orjson
import pytest

from pipeline.ingest.adapters.ngsi import FIWARE_METRICS
from pipeline.ingest.normalize import Normalizer
from pipeline.topology import load_topology
from tests.support.paths import CORPUS, SHANGHAI


@pytest.fixture(scope="module")
def shanghai() -> Normalizer:
    return Normalizer(load_topology(SHANGHAI))


def test_dissolved_oxygen_beside_ph_maps_to_the_catalogue(shanghai: Normalizer) -> None:
    doc = orjson.loads((CORPUS / "ngsi-ld" / "valid" / "water-quality-keyvalues.json").read_bytes())
    # An unregistered station placed by its coordinates (Huangpu), so every attribute that
    # maps to a catalogue metric becomes a reading.
    doc["location"] = {"type": "Point", "coordinates": [121.4903, 31.2286]}
    result = shanghai.normalize(orjson.dumps(doc))
    got = {r.metric: r.value for r in result.readings}
    assert got["dissolved_oxygen"] == pytest.approx(7.9)
    assert got["ph"] == pytest.approx(7.2)


def test_every_sample_metric_has_a_fiware_attribute_that_maps_to_it() -> None:
    catalogue = set(load_topology(SHANGHAI).metrics)
    targets = {metric for table in FIWARE_METRICS.values() for metric, _ in table.values()}
    assert sorted(catalogue - targets) == []


def test_traffic_occupancy_lands_on_the_sample_s_occupancy(shanghai: Normalizer) -> None:
    doc = orjson.loads((CORPUS / "ngsi-v2" / "valid" / "traffic-keyvalues.json").read_bytes())
    doc["location"] = {"type": "Point", "coordinates": [121.4903, 31.2286]}  # Huangpu
    result = shanghai.normalize(orjson.dumps(doc))
    got = {r.metric: (r.value, r.unit) for r in result.readings}
    assert got["occupancy"] == (pytest.approx(22.0), "%")  # 0.22 in the data model
    assert result.unmapped is None
