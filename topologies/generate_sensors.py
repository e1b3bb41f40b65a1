"""Generate topologies/sensors/shanghai.csv: a plausible, *synthetic* sensor registry.

400 sensors, 25 per district (air 6, traffic 6, water supply 5, water quality 3, noise 5),
at random points drawn with a fixed seed *inside* each district's boundary polygon
(boundaries/shanghai-districts.geojson, checked with shapely after rounding). The sensors
are invented; only the districts, their boundaries and the street codes are real.

Street assignment: by the sample's SYNTHETIC street/town polygons
(shanghai/streets-synthetic.geojson, through the topology's H3 grid index): a point is
redrawn until its grid cell lies in its own district, and one sensor in five names a
residential/village committee of its street instead (communities have no polygons). The
APPROXIMATE centroids below (hand-placed, roughly +-500 m, WGS-84) seed the synthetic
partition (shanghai/partition_streets.py) so those 22 streets lie roughly where they are.

Run: ``python topologies/generate_sensors.py`` (deterministic: same seed, same file).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from shapely import Point
from shapely.geometry import shape
from shapely.prepared import prep

from pipeline.models import AreaLevel
from pipeline.topology import load_yaml, parse_topology
from pipeline.topology.grid import GridIndex

HERE = Path(__file__).resolve().parent
BOUNDARIES = HERE / "boundaries" / "shanghai-districts.geojson"
OUT = HERE / "sensors" / "shanghai.csv"
SEED = 20260101
COMMUNITY_SHARE = 0.2

KINDS: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("aq", "air", 6, ("pm25", "pm10", "o3", "no2", "so2", "co")),
    ("tr", "traffic", 6, ("traffic_speed", "traffic_intensity", "occupancy")),
    ("ws", "water_supply", 5, ("water_pressure", "water_flow")),
    ("wq", "water_quality", 3, ("ph", "dissolved_oxygen", "nh3n", "turbidity")),
    ("nz", "noise", 5, ("noise_laeq",)),
)

# APPROXIMATE street/town centroids (lat, lon), WGS-84; not survey data.
STREET_CENTROIDS: dict[str, tuple[float, float]] = {
    "310101002": (31.2380, 121.4800),  # 南京东路
    "310101013": (31.2390, 121.4880),  # 外滩
    "310101015": (31.2010, 121.4910),  # 半淞园路
    "310101017": (31.2230, 121.5000),  # 小东门
    "310101018": (31.2270, 121.4890),  # 豫园
    "310101019": (31.2180, 121.4800),  # 老西门
    "310101020": (31.1990, 121.4730),  # 五里桥
    "310101021": (31.2060, 121.4680),  # 打浦桥
    "310101022": (31.2210, 121.4700),  # 淮海中路
    "310101023": (31.2110, 121.4620),  # 瑞金二路
    "310104003": (31.2050, 121.4410),  # 天平路
    "310104004": (31.2130, 121.4470),  # 湖南路
    "310104011": (31.1760, 121.4250),  # 田林
    "310104014": (31.1920, 121.4350),  # 徐家汇
    "310104016": (31.1700, 121.4500),  # 龙华
    "310104103": (31.1250, 121.4500),  # 华泾镇
    "310115005": (31.2350, 121.5100),  # 陆家嘴
    "310115016": (31.2100, 121.5550),  # 花木
    "310115125": (31.2050, 121.6000),  # 张江镇
    "310115130": (31.1450, 121.5000),  # 三林镇
    "310115103": (31.1900, 121.7000),  # 川沙新镇
    "310115145": (30.8900, 121.9200),  # 南汇新城镇
}


def grid_index() -> tuple[GridIndex, dict[str, list[str]]]:
    """The sample's grid index (built without its registry) and its committees by street."""
    data = load_yaml((HERE / "shanghai.yaml").read_text(encoding="utf-8"))
    data.pop("sensors")
    data.pop("datastreams")
    topology = parse_topology(data, HERE)
    index = topology.grid_index()
    if index is None:
        msg = "shanghai.yaml has no grid section"
        raise SystemExit(msg)
    communities: dict[str, list[str]] = {}
    for area in topology.areas_at(AreaLevel.community):
        communities.setdefault(area.parent or "", []).append(area.code)
    return index, communities


def generate() -> list[dict[str, str]]:
    """Every sensor row, deterministic for the seed."""
    rng = random.Random(SEED)  # noqa: S311  # synthetic sample data, not security
    index, communities = grid_index()
    collection = json.loads(BOUNDARIES.read_text(encoding="utf-8"))
    rows: list[dict[str, str]] = []
    for feature in collection["features"]:
        code = feature["properties"]["code"]
        geom = shape(feature["geometry"])
        inside = prep(geom)
        minx, miny, maxx, maxy = geom.bounds
        for prefix, kind, count, metrics in KINDS:
            for n in range(1, count + 1):
                while True:
                    lon = round(rng.uniform(minx, maxx), 5)
                    lat = round(rng.uniform(miny, maxy), 5)
                    # keep ~100 m clear of the border so rounding never moves a sensor out
                    codes = index.locate(lat, lon)[1] or {}
                    if (
                        inside.contains(Point(lon, lat).buffer(0.001))
                        and codes.get(AreaLevel.district) == code
                    ):
                        break
                street = codes[AreaLevel.street]
                named = communities.get(street)
                if named and rng.random() < COMMUNITY_SHARE:
                    street = rng.choice(named)
                rows.append(
                    {
                        "id": f"{prefix}-{code}-{n:02d}",
                        "kind": kind,
                        "metrics": " ".join(metrics),
                        "lat": f"{lat:.5f}",
                        "lon": f"{lon:.5f}",
                        "area": street,
                    }
                )
    return rows


def main() -> None:
    """Write the CSV registry."""
    rows = generate()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "kind", "metrics", "lat", "lon", "area"])
        writer.writeheader()
        writer.writerows(rows)
    streets = sum(1 for r in rows if len(r["area"]) == 9)
    print(f"wrote {OUT}: {len(rows)} sensors, {streets} naming a street, the rest a committee")


if __name__ == "__main__":
    main()
