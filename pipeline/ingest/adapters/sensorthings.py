"""OGC SensorThings API 1.1 Observations -> observations.

An Observation names its Datastream (``"Datastream": {"@iot.id": 42}`` or a
``Datastream@iot.navigationLink`` ending in ``Datastreams(42)``); the topology's
``datastreams`` maps that id to a sensor and a catalogue metric. ``result`` must be a number;
``phenomenonTime`` (an interval gives its end) or else ``resultTime`` is the time. The unit
comes from an expanded ``Datastream.unitOfMeasurement.symbol`` when present, else the
catalogue's canonical unit. Accepted shapes: one Observation, an array, a collection
response ``{"value": [...]}``, and the dataArray extension
``{"Datastream": {...}, "components": [...], "dataArray": [[...], ...]}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pipeline.ingest.adapters.base import (
    DATASTREAM_PREFIX,
    Adapter,
    Observation,
    ParseOutput,
    SchemaError,
    as_number,
    as_text,
    geometry_point,
    parse_time,
)

FORMAT = "sensorthings"

_NAV = re.compile(r"Datastreams\(\s*'?([^')]{1,128})'?\s*\)")
MAX_DATA_ARRAY = 10_000


def looks_like(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded object is a SensorThings Observation (or a dataArray)."""
    return ("result" in doc and ("phenomenonTime" in doc or "Datastream" in doc)) or (
        "dataArray" in doc and "components" in doc
    )


def _datastream(doc: Mapping[str, Any]) -> tuple[str, str | None]:
    """(datastream id, unit symbol if the Datastream is expanded)."""
    stream = doc.get("Datastream")
    if isinstance(stream, dict):
        ident = as_text(stream.get("@iot.id"), "Datastream.@iot.id")
        unit = None
        uom = stream.get("unitOfMeasurement")
        if isinstance(uom, dict):
            unit = as_text(uom.get("symbol"), "unitOfMeasurement.symbol", required=False)
        return str(ident), unit
    link = doc.get("Datastream@iot.navigationLink")
    if isinstance(link, str):
        match = _NAV.search(link)
        if match:
            return match.group(1), None
    msg = "Datastream: missing (an Observation must name its Datastream)"
    raise SchemaError(msg)


def _observation(
    stream: str, unit: str | None, fields: Mapping[str, Any], group: int
) -> Observation:
    time_value = fields.get("phenomenonTime")
    if time_value is None:
        time_value = fields.get("resultTime")
    observed = parse_time(time_value, "phenomenonTime")
    lat = lon = None
    feature = fields.get("FeatureOfInterest")
    if isinstance(feature, dict) and feature.get("feature") is not None:
        lat, lon = geometry_point(feature["feature"], "FeatureOfInterest.feature")
    iot_id = fields.get("@iot.id")
    event_id = None
    if iot_id is not None:
        event_id = f"sta-{stream}-{as_text(iot_id, '@iot.id')}"
    return Observation(
        sensor_ids=(DATASTREAM_PREFIX + stream,),
        metric="",
        value=as_number(fields.get("result"), "result"),
        unit=unit,
        observed_at=observed,
        source_format=FORMAT,
        lat=lat,
        lon=lon,
        event_id=event_id,
        group=group,
    )


def parse(doc: Any, out: ParseOutput, group: int = 0) -> None:
    """Append the observation(s) of one document to ``out``; SchemaError when invalid."""
    if not isinstance(doc, dict):
        msg = "expected a SensorThings Observation object"
        raise SchemaError(msg)
    stream, unit = _datastream(doc)
    if "dataArray" in doc:
        components = doc.get("components")
        rows = doc.get("dataArray")
        if not (
            isinstance(components, list)
            and all(isinstance(c, str) for c in components)
            and isinstance(rows, list)
        ):
            msg = "dataArray: components must be strings and dataArray a list of rows"
            raise SchemaError(msg)
        if not rows:  # nothing to read: refused, never silently dropped
            msg = "dataArray: no rows"
            raise SchemaError(msg)
        if len(rows) > MAX_DATA_ARRAY:
            msg = f"dataArray: more than {MAX_DATA_ARRAY} rows"
            raise SchemaError(msg)
        for row in rows:
            if not isinstance(row, list) or len(row) != len(components):
                msg = "dataArray: every row must have one value per component"
                raise SchemaError(msg)
            out.items.append(
                _observation(stream, unit, dict(zip(components, row, strict=True)), group)
            )
        return
    out.items.append(_observation(stream, unit, doc, group))


def unwrap(doc: Any) -> Any:
    """The Observation list of a collection response ``{"value": [...]}``."""
    if isinstance(doc, dict) and isinstance(doc.get("value"), list) and "result" not in doc:
        return doc["value"]
    return doc


ADAPTERS = (
    Adapter(name=FORMAT, aliases=("sta",), order=30, priority=20,
            looks_like=looks_like, unwrap=unwrap, parse=parse),
)  # fmt: skip
