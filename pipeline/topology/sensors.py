"""The ``sensors`` and ``datastreams`` sections: the sensor registry, inline or from a file.

Why: every reading is checked against the registry (known sensor, metric it measures, its
lowest known area). A city's registry is large, so it may live in a CSV or JSON file next
to the topology (``sensors: {file: sensors/x.csv}``) and each sensor is kept small.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from pipeline.topology.base import (
    Code,
    Frozen,
    MetricName,
    SensorId,
    Text,
    code_as_string,
    repeated_ids,
)
from pipeline.topology.errors import ErrorList, key_path, raise_issues

__all__ = [
    "Datastream",
    "DatastreamId",
    "Sensor",
    "check_datastreams",
    "check_sensors",
    "read_sensor_file",
    "sensors_by_id",
]


@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Sensor:
    """A registered sensor: what it measures, where it is, and its lowest known area.

    A slotted dataclass, not a model: a registry holds 100,000s of these, and a pydantic
    model instance costs ~1 KB more (its `__dict__` and field-set bookkeeping).
    """

    id: SensorId
    metrics: Annotated[tuple[MetricName, ...], Field(min_length=1, max_length=64)]
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    area: Code
    kind: Text | None = None

    @field_validator("metrics")
    @classmethod
    def _unique_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) == len(value):  # the common case, cheap for 100,000 sensors
            return value
        issues = [((i,), f"{m!r} is listed twice") for i, m in enumerate(value) if m in value[:i]]
        raise_issues(issues)
        return value


class Datastream(Frozen):
    """An OGC SensorThings Datastream: which sensor and metric its observations are."""

    sensor: SensorId
    metric: MetricName


DatastreamId = Annotated[
    str, BeforeValidator(code_as_string), Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
]


# --------------------------------------------------------------------------- cross-checks


def sensors_by_id(sensors: Sequence[Sensor | None] | None) -> dict[str, Sensor]:
    """The valid sensors by id (the first one where an id repeats)."""
    by_id: dict[str, Sensor] = {}
    for sensor in sensors or ():
        if sensor is not None:
            by_id.setdefault(sensor.id, sensor)
    return by_id


def check_sensors(
    sensors: Sequence[Sensor | None],
    area_codes: Collection[str] | None,
    metric_names: Collection[str] | None,
) -> ErrorList:
    """Unique ids; each sensor's area and metrics exist (None: names unknown, skip)."""
    errors: ErrorList = []
    repeated = repeated_ids(s.id if s is not None else None for s in sensors)
    for i, sensor in enumerate(sensors):
        if sensor is None:
            continue
        if i in repeated:
            errors.append((f"sensors[{i}].id", f"duplicate sensor id {sensor.id!r}"))
        if area_codes is not None and sensor.area not in area_codes:
            errors.append((f"sensors[{i}].area", f"unknown area {sensor.area!r}"))
        if metric_names is not None:
            errors += [
                (f"sensors[{i}].metrics[{j}]", f"unknown metric {m!r} (not in metrics)")
                for j, m in enumerate(sensor.metrics)
                if m not in metric_names
            ]
    return errors


def check_datastreams(
    datastreams: Mapping[str, Datastream],
    by_id: Mapping[str, Sensor],
    sensor_ids: Collection[str] | None,
    metric_names: Collection[str] | None,
) -> ErrorList:
    """Each datastream names a known sensor and a metric that sensor measures."""
    errors: ErrorList = []
    for key, stream in datastreams.items():
        where = f"datastreams{key_path(key)}"
        registered = by_id.get(stream.sensor)
        if sensor_ids is not None and stream.sensor not in sensor_ids:
            errors.append((f"{where}.sensor", f"unknown sensor {stream.sensor!r}"))
        if metric_names is not None and stream.metric not in metric_names:
            errors.append((f"{where}.metric", f"unknown metric {stream.metric!r}"))
        elif registered is not None and stream.metric not in registered.metrics:
            errors.append(
                (f"{where}.metric", f"sensor {stream.sensor} does not measure {stream.metric}")
            )
    return errors


# --------------------------------------------------------------------------- registry file

_SENSOR_COLUMNS = ("id", "metrics", "lat", "lon", "area", "kind")


def read_sensor_file(spec: Mapping[Any, Any], base_dir: Path) -> tuple[list[Any], ErrorList]:
    """Rows of a sensor registry file (``{file: sensors/x.csv}``; CSV or JSON list)."""
    extra = [k for k in spec if k != "file"]
    if extra:
        return [], [(f"sensors{key_path(k)}", "unknown key (only file)") for k in extra]
    rel = spec.get("file")
    if not isinstance(rel, str) or not rel:
        return [], [("sensors.file", "must be a path to a CSV or JSON registry")]
    path = base_dir / rel
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [("sensors.file", f"cannot read {path}: {exc}")]
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            return [], [("sensors.file", f"{rel} is not valid JSON: {exc}")]
        if not isinstance(rows, list):
            return [], [("sensors.file", f"{rel} must hold a JSON list of sensors")]
        return rows, []
    if path.suffix.lower() != ".csv":
        return [], [("sensors.file", f"{rel}: use a .csv or .json registry")]
    return _read_csv(text, rel)


def _read_csv(text: str, rel: str) -> tuple[list[Any], ErrorList]:
    """CSV rows as dicts: empty cells left out, metrics split on spaces, ``;`` or ``|``."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    missing = [c for c in _SENSOR_COLUMNS[:5] if c not in header]
    if missing:
        return [], [("sensors.file", f"{rel} lacks column(s) {', '.join(missing)}")]
    out: list[Any] = []
    split = re.compile(r"[\s;|]+").split
    # A registry repeats a few areas, kinds and metric lists for every sensor: share one
    # object each (100,000 sensors: tens of MB and a second of splitting saved).
    shared: dict[str, str] = {}
    metric_lists: dict[str, list[str]] = {}
    columns = list(enumerate(header))
    for row in reader:
        item: dict[str, Any] = {}
        for i, column in columns:
            value = row[i] if i < len(row) else ""
            if value == "":
                continue
            if column == "metrics":
                metrics = metric_lists.get(value)
                if metrics is None:
                    metrics = metric_lists[value] = [sys.intern(m) for m in split(value) if m]
                item[column] = list(metrics)
            elif column in ("area", "kind"):
                item[column] = shared.setdefault(value, value)
            else:
                item[column] = value
        out.append(item)
    return out, []
