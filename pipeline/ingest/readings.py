"""A parsed measurement -> a reading row resolved against the topology (the hot path).

The one place every format's readings go through: source metric names to catalogue names,
the sensor registry or else coordinates to areas, unit conversion to the canonical unit
(only units the catalogue accepts), the physical range, time bounds and the deterministic
event id. Lookups are built once per topology and cached, so a reading costs a few
microseconds; the common canonical reading skips the general parser altogether
(:meth:`ReadingResolver.canonical`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any, NamedTuple

from pipeline.aggregates.codec import to_micros
from pipeline.ingest.adapters.base import DATASTREAM_PREFIX, MAX_ID_LENGTH, Observation
from pipeline.ingest.lookups import EventTimes, Places, Reject, Skip
from pipeline.models import AdminCodes, AreaCodes, ReadingRow, RejectReason
from pipeline.topology import Metric, Topology
from pipeline.units import UnitError, canonical_unit_name, unit

__all__ = ["CANONICAL", "ReadingResolver", "event_id"]

CANONICAL = "canonical"
_CACHE_LIMIT = 4096
#: Registered sensors whose lookups stay cached (least recently used beyond). Why bounded:
#: a cached sensor costs ~1 KB (its location model, metric set), so 100,000 sensors would
#: hold ~100 MB, while rebuilding a missed one costs a few microseconds.
_SENSOR_CACHE = 16384

# (source factor, source offset, target factor, target offset): the same arithmetic as
# pipeline.units.convert, so results are bit-identical to it.
_Conversion = tuple[float, float, float, float]


def event_id(sensor_id: str, metric: str, observed_at_iso: str, value: float) -> str:
    """Deterministic id of a reading whose source gave none: a replay gets the same id."""
    key = f"{sensor_id}|{metric}|{observed_at_iso}|{value!r}".encode()
    return blake2b(key, digest_size=8).hexdigest()


class _SensorInfo(NamedTuple):
    """What a reading needs of a registered sensor, kept small: a cache holds 16,384 of
    them (the metric set is shared between sensors of the same list, the codes a tuple,
    not a model: together ~13 MB less with a full cache). A tuple: with the full city's
    100,000 sensors every lookup misses the cache, and a frozen dataclass cost ~1 us to
    make."""

    sensor_id: str
    metrics: frozenset[str]
    location: tuple[float, float]
    areas: AreaCodes


def _areas(codes: AdminCodes) -> AreaCodes:
    return (codes.district, codes.street, codes.grid, codes.community)


class ReadingResolver:
    """Resolve measurements for one topology (build once, call per measurement)."""

    def __init__(self, topology: Topology, places: Places, times: EventTimes) -> None:
        self.topology = topology
        self._places = places
        self._bounded = times.bounded
        self._metrics: dict[str, Metric] = dict(topology.metrics)
        self._datastreams: dict[str, tuple[str, str]] = {
            str(key): (ds.sensor, ds.metric) for key, ds in topology.datastreams.items()
        }
        # The registry's own mapping, taken once: `Topology.sensor` reads a private
        # attribute through pydantic's `__getattr__` (~3 us), and a miss of the cache
        # below (every lookup, with the full city's sensors) paid it each time.
        self._registry = topology.sensor_index
        self._sensor = functools.lru_cache(maxsize=_SENSOR_CACHE)(self._sensor_info)
        self._metric_sets: dict[tuple[str, ...], frozenset[str]] = {}
        self._conversions: dict[tuple[str, str], _Conversion | str] = {}

    # -- cached lookups ----------------------------------------------------------------

    def _sensor_info(self, sensor_id: str) -> _SensorInfo | None:
        """What a reading needs of a registered sensor (None: not registered)."""
        sensor = self._registry.get(sensor_id)
        if sensor is None:
            return None
        metrics = self._metric_sets.get(sensor.metrics)
        if metrics is None:
            metrics = self._metric_sets[sensor.metrics] = frozenset(sensor.metrics)
        lat, lon = sensor.lat, sensor.lon
        return _SensorInfo(
            sensor.id, metrics, (lat, lon), self._places.areas_at(sensor.area, lat, lon)
        )

    def _conversion(self, metric_name: str, metric: Metric, source: str) -> _Conversion:
        key = (metric_name, source)
        found = self._conversions.get(key)
        if found is None:
            try:
                if not metric.accepts(source):
                    accepted = ", ".join(metric.accepted_units)
                    msg = f"{metric_name}: unit {source!r} not accepted (accepted: {accepted})"
                    raise UnitError(msg)
                src = unit(canonical_unit_name(source))
                dst = unit(metric.unit)
                found = (src.factor, src.offset, dst.factor, dst.offset)
            except UnitError as exc:
                found = str(exc)
            if len(self._conversions) < _CACHE_LIMIT:
                self._conversions[key] = found
        if isinstance(found, str):
            raise Reject(RejectReason.unit_not_convertible, found)
        return found

    # -- resolution ----------------------------------------------------------------------

    def reading(self, obs: Observation, arrived_us: int | None) -> ReadingRow:
        """A parsed observation as a reading row; `Reject` or `Skip` when it is none."""
        first = obs.sensor_ids[0]
        if first.startswith(DATASTREAM_PREFIX):
            stream = first[len(DATASTREAM_PREFIX) :]
            mapped = self._datastreams.get(stream)
            if mapped is None:
                detail = f"Datastream {stream!r} is not in the topology's datastreams"
                raise Reject(RejectReason.unknown_sensor, detail)
            candidates: tuple[str, ...] = (mapped[0],)
            metric_name = mapped[1]
        else:
            candidates = obs.sensor_ids
            table = obs.metric_table
            if table:
                entry = table.get(obs.metric)
                metric_name = entry[0] if entry is not None else obs.metric
            else:
                metric_name = obs.metric
        source_unit = obs.unit if obs.unit is not None else obs.default_unit
        return self.resolve(
            candidates, metric_name, obs.value, source_unit, obs.observed_at, obs.event_id,
            obs.lat, obs.lon, obs.source_format, arrived_us, optional=obs.optional,
        )  # fmt: skip

    def resolve(
        self,
        candidates: tuple[str, ...],
        metric_name: str,
        value: float,
        source_unit: str | None,
        observed_at: datetime,
        ident: str | None,
        lat: float | None,
        lon: float | None,
        source_format: str,
        arrived_us: int | None,
        *,
        optional: bool = False,
    ) -> ReadingRow:
        """A parsed measurement resolved against the topology: catalogue name, sensor and
        areas, canonical unit, physical range, time bounds, event id (the one place every
        format's readings go through)."""
        metric = self._metrics.get(metric_name)
        if metric is None:
            if optional:
                raise Skip(self._sensor_of(candidates), metric_name, unmapped=True)
            raise Reject(RejectReason.unknown_metric, f"{metric_name!r} is not in the catalogue")
        sensor_id, location, areas = self._where(candidates, metric_name, lat, lon, optional)
        if source_unit is not None and source_unit != metric.unit:
            sf, so, tf, to = self._conversion(metric_name, metric, source_unit)
            value = ((value * sf + so) - to) / tf
        low, high = metric.range
        if not low <= value <= high:
            detail = f"{metric_name}={value:g} {metric.unit} outside [{low:g}, {high:g}]"
            raise Reject(RejectReason.out_of_range, detail)
        observed_us = self._bounded(to_micros(observed_at), arrived_us)
        if ident is None:
            ident = event_id(sensor_id, metric_name, observed_at.isoformat(), value)
        return ReadingRow(
            ident,
            sensor_id,
            metric_name,
            value,
            metric.unit,
            observed_us,
            *areas,
            location[0] if location is not None else None,
            location[1] if location is not None else None,
            source_format,
            arrived_us,
        )

    def _where(
        self,
        candidates: tuple[str, ...],
        metric_name: str,
        lat: float | None,
        lon: float | None,
        optional: bool,
    ) -> tuple[str, tuple[float, float] | None, AreaCodes]:
        """(sensor id, location, areas): the first registered candidate (registered for
        the metric), else the coordinates' place, else the rejection."""
        info = None
        for candidate in candidates:
            info = self._sensor(candidate)
            if info is not None:
                break
        if info is not None:
            if metric_name not in info.metrics:
                if optional:
                    raise Skip(info.sensor_id, metric_name, unmapped=False)
                detail = f"sensor {info.sensor_id!r} is not registered for {metric_name!r}"
                raise Reject(RejectReason.unknown_metric, detail)
            return info.sensor_id, info.location, info.areas
        if lat is not None and lon is not None:
            return candidates[0], (lat, lon), _areas(self._places.place(lat, lon))
        detail = f"sensor {candidates[0][:80]!r} is not registered and gives no location"
        raise Reject(RejectReason.unknown_sensor, detail)

    def _sensor_of(self, candidates: tuple[str, ...]) -> str:
        """The registered sensor among the candidates, else the first candidate (for logs)."""
        for candidate in candidates:
            info = self._sensor(candidate)
            if info is not None:
                return info.sensor_id
        return candidates[0]

    def canonical(self, doc: dict[str, Any], arrived_us: int | None) -> ReadingRow | None:
        """The common case, fast: one canonical reading with plain, well-typed fields and
        no location, resolved without the general parser's intermediate objects. None when
        the document is anything else (the general path then gives the same answer)."""
        sensor, metric, value = doc.get("sensor_id"), doc.get("metric"), doc.get("value")
        observed, unit, ident = doc.get("observed_at"), doc.get("unit"), doc.get("event_id")
        if (
            type(sensor) is not str
            or type(metric) is not str
            or type(observed) is not str
            or not 0 < len(sensor) <= MAX_ID_LENGTH
            or not 0 < len(metric) <= MAX_ID_LENGTH
            or not 10 <= len(observed) <= 80
            or "/" in observed
            or (unit is not None and (type(unit) is not str or not 0 < len(unit) <= MAX_ID_LENGTH))
            or (
                ident is not None
                and (type(ident) is not str or not 0 < len(ident) <= MAX_ID_LENGTH)
            )
            or "location" in doc
            or "lat" in doc
            or "lon" in doc
            or "report_id" in doc
        ):
            return None
        if type(value) is int:
            if not -(1 << 53) < value < 1 << 53:
                return None
            value = float(value)
        elif type(value) is not float:
            return None
        try:
            at = datetime.fromisoformat(observed)
        except ValueError:
            return None
        if at.tzinfo is not UTC:
            return None
        return self.resolve(
            (sensor,), metric, value, unit, at, ident, None, None, CANONICAL, arrived_us
        )
