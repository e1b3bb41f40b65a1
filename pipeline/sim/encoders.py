"""Re-encode simulated canonical events in the other formats cities meet.

Why: the simulator thinks in canonical events; real deployments receive FIWARE NGSI v2 /
NGSI-LD entities, OGC SensorThings observations and Open311 requests too. Encoding a
share of the simulated stream in those formats exercises every adapter end to end. Each
encoder is the inverse of its adapter: what it writes normalizes back to the same event.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from pipeline.ingest.adapters.ngsi import FIWARE_METRICS
from pipeline.sim.events import SimEvent
from pipeline.topology import Topology
from pipeline.units import convert

READING_FORMATS = ("canonical", "ngsi-v2", "ngsi-ld", "sensorthings")
REPORT_FORMATS = ("canonical", "open311")
FORMATS = tuple(dict.fromkeys(READING_FORMATS + REPORT_FORMATS))


class FormatEncoder:
    """Encodes canonical reading/report dicts for one topology (lookups built once)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        # metric -> (entity type, attribute, unit the data model implies or None)
        self._fiware: dict[str, tuple[str, str, str | None]] = {}
        for entity_type, table in FIWARE_METRICS.items():
            for attribute, (metric, unit) in table.items():
                if attribute.isupper() or metric in self._fiware:
                    continue  # legacy upper-case aliases: write the current names
                self._fiware[metric] = (entity_type, attribute, unit)
        self._datastreams = {
            (ds.sensor, ds.metric): key for key, ds in topology.datastreams.items()
        }
        self._located = bool(topology.boundaries)

    def reading(self, event: dict[str, Any], fmt: str) -> bytes | None:
        """``event`` in ``fmt``, or None when that format cannot carry this reading."""
        if fmt == "canonical":
            return orjson.dumps(event)
        if fmt == "sensorthings":
            stream = self._datastreams.get((event["sensor_id"], event["metric"]))
            if stream is None:
                return None
            return orjson.dumps({
                "@iot.id": event["event_id"], "phenomenonTime": event["observed_at"],
                "result": event["value"], "Datastream": {"@iot.id": int(stream)},
            })  # fmt: skip
        fiware = self._fiware.get(event["metric"])
        if fiware is None or fmt not in ("ngsi-v2", "ngsi-ld"):
            return None
        entity_type, attribute, implied_unit = fiware
        value = event["value"]
        if implied_unit is not None and implied_unit != event["unit"]:
            value = convert(value, event["unit"], implied_unit)
        sensor = event["sensor_id"]
        if fmt == "ngsi-v2":
            return orjson.dumps({
                "id": f"{entity_type}-{sensor}", "type": entity_type,
                "dateObserved": {"type": "DateTime", "value": event["observed_at"]},
                "refDevice": {"type": "Relationship", "value": sensor},
                attribute: {"type": "Number", "value": value},
            })  # fmt: skip
        return orjson.dumps({
            "id": f"urn:ngsi-ld:{entity_type}:{sensor}", "type": entity_type,
            "dateObserved": {"type": "Property", "value": event["observed_at"]},
            "refDevice": {"type": "Relationship", "object": sensor},
            attribute: {"type": "Property", "value": value},
            "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
        })  # fmt: skip

    def report(self, event: dict[str, Any], fmt: str) -> bytes | None:
        """A citizen report in ``fmt`` (Open311 needs coordinates and boundaries)."""
        if fmt == "canonical":
            return orjson.dumps(event)
        if fmt != "open311" or not self._located or event.get("lat") is None:
            return None
        return orjson.dumps({
            "service_request_id": event["report_id"], "status": "open",
            "service_code": event["category"], "description": event.get("description", ""),
            "requested_datetime": event["reported_at"],
            "lat": event["lat"], "long": event["lon"],
        })  # fmt: skip


def mix_formats(
    events: Iterable[SimEvent], topology: Topology, formats: Sequence[str], *, seed: int = 0
) -> Iterator[SimEvent]:
    """Re-encode each valid event in a format drawn from ``formats`` (deterministic for a
    seed); faults and events a format cannot carry stay canonical."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        msg = f"unknown formats {unknown}; known: {', '.join(FORMATS)}"
        raise ValueError(msg)
    if list(formats) == ["canonical"]:
        yield from events
        return
    encoder = FormatEncoder(topology)
    readings = [f for f in formats if f in READING_FORMATS] or ["canonical"]
    reports = [f for f in formats if f in REPORT_FORMATS] or ["canonical"]
    rng = random.Random(seed ^ 0x5F0A)  # noqa: S311  # simulation, not cryptography
    raw_reports = topology.topics.name("raw_reports")
    for event in events:
        if event.fault is None:
            body = orjson.loads(event.value)
            if event.topic == raw_reports:
                encoded = encoder.report(body, rng.choice(reports))
            else:
                encoded = encoder.reading(body, rng.choice(readings))
            if encoded is not None:
                event = event._replace(value=encoded)
        yield event
