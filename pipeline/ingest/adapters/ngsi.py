"""FIWARE NGSI v2 and NGSI-LD entities (normalized and keyValues) -> observations.

One entity carries several measurements (an AirQualityObserved has pm25, pm10, no2, ...):
every numeric attribute becomes an :class:`Observation`; the resolution step keeps those
whose name maps to a catalogue metric and skips the rest (``airQualityIndex`` when the
catalogue has no AQI). Where the value, unit and time sit:

- v2 normalized: ``{"type": "Number", "value": 82, "metadata": {"unitCode": {"value":
  "GQ"}, "timestamp": {"value": "..."}}}``
- NGSI-LD normalized: ``{"type": "Property", "value": 82, "unitCode": "GQ",
  "observedAt": "..."}``
- keyValues (both): ``82`` - units by the data model's convention (``DEFAULT`` below),
  else the catalogue's canonical unit.

Time: the attribute's own ``observedAt`` / ``timestamp``, else the entity's
``dateObserved`` (an ISO interval gives its end), ``dateObservedTo``, ``dateObservedFrom``.
Orion / broker notifications (``{"subscriptionId": ..., "data": [...]}``) are unwrapped.

Three adapters share these functions: ``ngsi-v2`` and ``ngsi-ld`` (declared, or told apart
by :func:`is_ld` on the first entity), and the header value ``ngsi``, which leaves the
flavour to each entity's own shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pipeline.ingest.adapters.base import (
    Adapter,
    Observation,
    ParseOutput,
    SchemaError,
    as_number,
    as_text,
    geometry_point,
    parse_time,
)

FORMAT_V2 = "ngsi-v2"
FORMAT_LD = "ngsi-ld"
FORMAT_EITHER = "ngsi"

MetricTable = Mapping[str, tuple[str, str | None]]

# FIWARE attribute name -> (catalogue metric name, the data model's conventional unit or None
# when the model states none: then the catalogue's canonical unit is assumed).
_AIR: dict[str, tuple[str, str | None]] = {
    **{
        name: (name, None)
        for name in (
            "pm25",
            "pm10",
            "pm1",
            "o3",
            "no2",
            "so2",
            "co",
            "no",
            "nox",
            "co2",
            "c6h6",
            "nh3",
        )
    },
    # older payloads spell pollutants in upper case
    **{name.upper(): (name, None) for name in ("pm10", "pm1", "o3", "no2", "so2", "co", "no")},
    "PM25": ("pm25", None),
    "PM2.5": ("pm25", None),
    "NOx": ("nox", None),
    "CO2": ("co2", None),
    "airQualityIndex": ("aqi", "1"),
    "temperature": ("air_temperature", "degC"),
    "relativeHumidity": ("humidity", "1"),  # a 0..1 fraction in the data model
    "windSpeed": ("wind_speed", "m/s"),
    "precipitation": ("precipitation", None),
}
_WATER: dict[str, tuple[str, str | None]] = {
    "temperature": ("water_temperature", "degC"),
    "pH": ("ph", "pH"),
    "O2": ("dissolved_oxygen", None),  # the catalogue name (Smart Data Models: dissolved oxygen)
    "cod": ("cod", None),
    "bod": ("bod5", None),
    "NH4": ("nh3n", None),  # GB 3838 ammonia nitrogen arrives as NH4 (see notes)
    "NH3": ("nh3n", None),
    "NO3": ("no3", None),
    "NO2": ("nitrite", None),
    "N-TOT": ("tn", None),
    "P-TOT": ("tp", None),
    "turbidity": ("turbidity", "NTU"),
    "conductivity": ("conductivity", None),
    "conductance": ("conductivity", None),
    "tss": ("tss", None),
    "tds": ("tds", None),
    "Chla": ("chla", None),
    "flow": ("water_flow", None),
}
_TRAFFIC: dict[str, tuple[str, str | None]] = {
    "intensity": ("traffic_intensity", None),
    "occupancy": ("occupancy", "1"),  # 0..1 in the data model; the sample catalogue's name
    "averageVehicleSpeed": ("traffic_speed", "km/h"),
    "averageGapDistance": ("traffic_gap", "m"),
    "averageHeadwayTime": ("traffic_headway", None),
}
_NOISE: dict[str, tuple[str, str | None]] = {
    "LAeq": ("noise_laeq", "dB(A)"),
    "LAmax": ("noise_lamax", "dB(A)"),
    "LAS": ("noise_las", "dB(A)"),
    "LAeq_d": ("noise_laeq_d", "dB(A)"),
}
_WATER_SUPPLY: dict[str, tuple[str, str | None]] = {
    "pressure": ("water_pressure", None),
    "flow": ("water_flow", None),
    "waterLevel": ("water_level", "m"),
    "waterConsumption": ("water_consumption", None),
    "maxFlow": ("water_flow_max", "l/h"),
    "minFlow": ("water_flow_min", "l/h"),
}

#: Entity type -> attribute table. Types not listed use no table: an attribute is then used
#: only when its name is itself a catalogue metric name.
FIWARE_METRICS: Mapping[str, MetricTable] = MappingProxyType(
    {
        "AirQualityObserved": MappingProxyType(_AIR),
        "WaterQualityObserved": MappingProxyType(_WATER),
        "TrafficFlowObserved": MappingProxyType(_TRAFFIC),
        "NoiseLevelObserved": MappingProxyType(_NOISE),
        "WaterObserved": MappingProxyType(_WATER_SUPPLY),
        "WaterConsumptionObserved": MappingProxyType(_WATER_SUPPLY),
        "Junction": MappingProxyType(_WATER_SUPPLY),
    }
)
_EMPTY: MetricTable = MappingProxyType({})

# Attributes that are never measurements.
_RESERVED = frozenset(
    {
        "id",
        "type",
        "@context",
        "location",
        "dateObserved",
        "dateObservedFrom",
        "dateObservedTo",
        "dateCreated",
        "dateModified",
        "refDevice",
        "refPointOfInterest",
        "refRoadSegment",
        "address",
        "areaServed",
        "name",
        "description",
        "dataProvider",
        "source",
        "seeAlso",
        "owner",
        "reliability",
        "laneId",
        "laneDirection",
        "airQualityLevel",
        "congested",
        "measurand",
        "typeofLocation",
        "alternateName",
    }
)
_TIME_KEYS = ("dateObserved", "dateObservedTo", "dateObservedFrom")
_LD_TYPES = frozenset({"Property", "GeoProperty", "LanguageProperty"})


def _short(name: str) -> str:
    """Last segment of a URI or URN (expanded NGSI-LD names and types, entity ids)."""
    for sep in ("#", "/", ":"):
        if sep in name:
            name = name.rpartition(sep)[2]
    return name


def is_ld(doc: Mapping[str, Any]) -> bool:
    """Whether an entity is NGSI-LD rather than v2."""
    if "@context" in doc:
        return True
    entity_id = doc.get("id")
    if isinstance(entity_id, str) and entity_id.startswith("urn:ngsi-ld:"):
        return True
    for value in doc.values():
        if isinstance(value, dict):
            kind = value.get("type")
            if not isinstance(kind, str):
                continue
            # v2 also has "Relationship" attributes, but with a "value", not an "object"
            if kind in _LD_TYPES or (kind == "Relationship" and "object" in value):
                return True
    return False


def looks_like(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded object is an NGSI entity (id + type)."""
    return isinstance(doc.get("id"), str) and isinstance(doc.get("type"), str)


def _plain(value: Any) -> Any:
    """The bare value of an attribute in any of the four representations."""
    if isinstance(value, dict):
        if "value" in value:
            inner = value["value"]
            if isinstance(inner, dict) and "@value" in inner:  # LD typed literal
                return inner["@value"]
            return inner
        if "@value" in value:
            return value["@value"]
    return value


def _entity_time(doc: Mapping[str, Any]) -> Any:
    for key in _TIME_KEYS:
        if key in doc:
            return _plain(doc[key]), key
    return None, "dateObserved"


def _sensor_candidates(doc: Mapping[str, Any], entity_id: str) -> tuple[str, ...]:
    candidates = [entity_id]
    short = _short(entity_id)
    if short != entity_id and short:
        candidates.append(short)
    ref = _plain(doc.get("refDevice"))
    if isinstance(ref, dict):  # LD Relationship {"object": ...}
        ref = ref.get("object")
    refs = ref if isinstance(ref, list) else [ref]
    for item in refs[:4]:
        if isinstance(item, str) and item:
            candidates.append(item)
            if _short(item) != item:
                candidates.append(_short(item))
    return tuple(dict.fromkeys(c for c in candidates if len(c) <= 200))


def _measurands(doc: Mapping[str, Any]) -> list[tuple[str, Any, str | None]]:
    """WaterQualityObserved ``measurand``: ["NO3, 0.01, M1, Nitrate concentration", ...]."""
    raw = _plain(doc.get("measurand"))
    found: list[tuple[str, Any, str | None]] = []
    if isinstance(raw, list):
        for entry in raw[:64]:
            if isinstance(entry, str):
                parts = [p.strip() for p in entry.split(",")]
                if len(parts) >= 2:
                    try:
                        number = float(parts[1])
                    except ValueError:
                        continue
                    found.append((parts[0], number, parts[2] if len(parts) > 2 else None))
    return found


def parse(doc: Any, out: ParseOutput, group: int = 0, *, ld: bool | None = None) -> None:
    """Append the observations of one entity to ``out``; SchemaError when it is not one.

    ``ld`` None: the entity's own shape says whether it is NGSI-LD.
    """
    if not isinstance(doc, dict):
        msg = "expected an NGSI entity object"
        raise SchemaError(msg)
    entity_id = as_text(doc.get("id"), "id")
    entity_type = as_text(doc.get("type"), "type")
    assert entity_id is not None and entity_type is not None  # noqa: S101 - required above
    fmt = FORMAT_LD if (is_ld(doc) if ld is None else ld) else FORMAT_V2
    table = FIWARE_METRICS.get(_short(entity_type), _EMPTY)
    raw_time, time_key = _entity_time(doc)
    entity_time = parse_time(raw_time, time_key) if raw_time is not None else None
    lat = lon = None
    if "location" in doc:
        location = _plain(doc["location"])
        if location is not None:
            lat, lon = geometry_point(location, "location")
    sensors = _sensor_candidates(doc, entity_id)
    before = len(out.items)
    for name, attr in doc.items():
        if name in _RESERVED:
            continue
        unit: str | None = None
        observed = entity_time
        if isinstance(attr, dict):
            value = attr.get("value")
            if isinstance(value, dict):
                value = value.get("@value")
            if "unitCode" in attr:  # NGSI-LD
                unit = as_text(attr["unitCode"], f"{name}.unitCode")
            metadata = attr.get("metadata")
            if isinstance(metadata, dict):  # NGSI v2
                if "unitCode" in metadata:
                    unit = as_text(_plain(metadata["unitCode"]), f"{name}.unitCode")
                if "timestamp" in metadata:
                    observed = parse_time(_plain(metadata["timestamp"]), f"{name}.timestamp")
            if "observedAt" in attr:
                observed = parse_time(attr["observedAt"], f"{name}.observedAt")
        else:
            value = attr
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # text, flags, structured values: not a measurement
        if observed is None:
            msg = "dateObserved: missing (and no observedAt on the attribute)"
            raise SchemaError(msg)
        short = name if name in table else _short(name)
        conventional = table.get(short)
        out.items.append(
            Observation(
                sensor_ids=sensors,
                metric=short,
                value=as_number(value, name),
                unit=unit,
                observed_at=observed,
                source_format=fmt,
                lat=lat,
                lon=lon,
                default_unit=conventional[1] if conventional is not None else None,
                metric_table=table,
                group=group,
                optional=True,
            )
        )
    for name, number, unit_code in _measurands(doc):
        if entity_time is None:
            msg = "dateObserved: missing"
            raise SchemaError(msg)
        conventional = table.get(name)
        out.items.append(
            Observation(
                sensor_ids=sensors,
                metric=name,
                value=as_number(number, f"measurand {name}"),
                unit=unit_code,
                observed_at=entity_time,
                source_format=fmt,
                lat=lat,
                lon=lon,
                default_unit=conventional[1] if conventional is not None else None,
                metric_table=table,
                group=group,
                optional=True,
            )
        )
    if len(out.items) == before:
        msg = f"entity {entity_id[:80]!r} has no numeric measurement"
        raise SchemaError(msg)


def unwrap(doc: Any) -> Any:
    """The entity list inside a subscription notification, else the document itself."""
    if isinstance(doc, dict) and "subscriptionId" in doc and isinstance(doc.get("data"), list):
        return doc["data"]
    return doc


def _v2_entity(doc: Mapping[str, Any]) -> bool:
    return looks_like(doc) and not is_ld(doc)


def _ld_entity(doc: Mapping[str, Any]) -> bool:
    return looks_like(doc) and is_ld(doc)


def _parse_v2(doc: Any, out: ParseOutput, group: int) -> None:
    parse(doc, out, group, ld=False)


def _parse_ld(doc: Any, out: ParseOutput, group: int) -> None:
    parse(doc, out, group, ld=True)


def _is_notification(doc: Any) -> bool:
    """A broker notification (``subscriptionId``) is NGSI even when its entities are not."""
    return isinstance(doc, dict) and "subscriptionId" in doc


ADAPTERS = (
    Adapter(name=FORMAT_V2, aliases=("ngsiv2",), order=10, priority=40,
            looks_like=_v2_entity, unwrap=unwrap, claims_envelope=_is_notification,
            parse=_parse_v2),
    Adapter(name=FORMAT_LD, aliases=("ngsild",), content_types=("ld+json",), order=20,
            priority=41, looks_like=_ld_entity, unwrap=unwrap, parse=_parse_ld),
    # Header only (never the outcome of shape detection, not in FORMATS): each entity's
    # own shape says v2 or LD, so one batch may hold both.
    Adapter(name=FORMAT_EITHER, priority=None, unwrap=unwrap, parse=parse),
)  # fmt: skip
