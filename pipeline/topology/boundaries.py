"""The ``boundaries`` section: GeoJSON polygons of districts and lower areas.

Why: a reading without an area code is placed by its coordinates, so each polygon must
belong to a known area below the city, once, and be a valid (Multi)Polygon. The files are
read when a topology is loaded (to report their errors with the others) and again on
first use when a topology was built without loading.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.models import AreaLevel
from pipeline.topology.areas import Area
from pipeline.topology.errors import ErrorList

__all__ = ["BoundaryFeatures", "as_path_list", "load_boundaries"]


class BoundaryFeatures(list[tuple[str, Any]]):
    """``(area code, shapely geometry)`` per boundary, and which are synthetic stand-ins.

    A feature with ``properties.synthetic: true`` is a generated shape, not the area's
    real boundary (the Shanghai sample's street polygons): ``topology show`` says so.
    """

    synthetic: frozenset[str] = frozenset()


def as_path_list(value: object) -> object:
    """``boundaries: a.geojson`` is the same as ``boundaries: [a.geojson]``."""
    return (value,) if isinstance(value, str) else value


def load_boundaries(
    paths: Iterable[str], base_dir: Path, areas: Mapping[str, Area]
) -> tuple[BoundaryFeatures, ErrorList]:
    """Read GeoJSON FeatureCollections whose features carry ``properties.code`` (and
    ``properties.synthetic: true`` where the shape is a stand-in)."""
    features = BoundaryFeatures()
    synthetic: set[str] = set()
    errors: ErrorList = []
    seen: dict[str, str] = {}
    for n, rel in enumerate(paths):
        where = f"boundaries[{n}]"
        raw_features, file_errors = _read_collection(base_dir / rel, rel, where)
        errors += file_errors
        for k, feature in enumerate(raw_features):
            at = f"{where} ({rel} features[{k}])"
            code, geom, problem = _polygon(feature, areas, seen)
            if problem is not None:
                errors.append((at, problem))
                continue
            seen[code] = rel
            features.append((code, geom))
            if feature.get("properties", {}).get("synthetic") is True:
                synthetic.add(code)
    features.synthetic = frozenset(synthetic)
    return features, errors


def _read_collection(path: Path, rel: str, where: str) -> tuple[list[Any], ErrorList]:
    """The features of one FeatureCollection file, or why it cannot be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return [], [(where, f"cannot read {path}: {exc.strerror or exc}")]
    except ValueError as exc:
        return [], [(where, f"{rel} is not valid JSON: {exc}")]
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        return [], [(where, f"{rel} must be a GeoJSON FeatureCollection")]
    raw_features = doc.get("features")
    if not isinstance(raw_features, list):
        return [], [(where, f"{rel}: features must be a list")]
    return raw_features, []


def _polygon(
    feature: Any, areas: Mapping[str, Area], seen: Mapping[str, str]
) -> tuple[str, Any, str | None]:
    """``(code, geometry, None)`` for a good feature, else ``(code, None, problem)``."""
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    props = feature.get("properties") if isinstance(feature, dict) else None
    code = str(props.get("code")) if isinstance(props, dict) else None
    if code is None or code not in areas:
        return "", None, f"properties.code {code!r} is not a known area"
    if areas[code].level == AreaLevel.city:
        return code, None, f"{code} is the city: boundaries are for districts and lower"
    if code in seen:
        return code, None, f"{code} already has a boundary in {seen[code]}"
    try:
        geom = shape(feature.get("geometry"))
    except Exception as exc:  # noqa: BLE001  # shapely raises many types on bad input
        return code, None, f"invalid geometry: {exc}"
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        return code, None, f"geometry must be a Polygon or MultiPolygon, not {geom.geom_type}"
    if not geom.is_valid:
        return code, None, f"invalid geometry: {explain_validity(geom)}"
    return code, geom, None
