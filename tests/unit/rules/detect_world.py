"""A small test city for the detection, cluster and lifecycle tests (built through the real
topology parser, so the tests exercise the contract's YAML shape)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.models import AdminCodes, CitizenReport, GeoPoint, Reading
from pipeline.topology import Topology, parse_topology

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

CITY = "310000"
HUANGPU = "310101"
NANJING_EAST = "310101002"
WAITAN = "310101013"
XUHUI = "310104"
TIANPING = "310104003"

SENSOR_AREAS = {
    "aq-1": NANJING_EAST,
    "aq-2": NANJING_EAST,
    "aq-3": WAITAN,
    "aq-4": TIANPING,
    "wq-1": WAITAN,
}
PARENT = {NANJING_EAST: HUANGPU, WAITAN: HUANGPU, TIANPING: XUHUI}

BASE: dict[str, Any] = {
    "id": "testcity",
    "name": "Test City",
    "timezone": "Asia/Shanghai",
    "topics": {"prefix": "cityops.test.", "partitions": 2, "replication": 1},
    "areas": [
        {"code": CITY, "level": "city", "name": "上海市", "name_en": "Shanghai"},
        {"code": HUANGPU, "level": "district", "parent": CITY, "name": "黄浦区"},
        {"code": NANJING_EAST, "level": "street", "parent": HUANGPU, "name": "南京东路街道"},
        {"code": WAITAN, "level": "street", "parent": HUANGPU, "name": "外滩街道"},
        {"code": XUHUI, "level": "district", "parent": CITY, "name": "徐汇区"},
        {"code": TIANPING, "level": "street", "parent": XUHUI, "name": "天平路街道"},
    ],
    "sensors": [
        {"id": "aq-1", "metrics": ["pm25"], "lat": 31.2365, "lon": 121.4790, "area": NANJING_EAST},
        {"id": "aq-2", "metrics": ["pm25"], "lat": 31.2380, "lon": 121.4820, "area": NANJING_EAST},
        {"id": "aq-3", "metrics": ["pm25"], "lat": 31.2400, "lon": 121.4900, "area": WAITAN},
        {"id": "aq-4", "metrics": ["pm25"], "lat": 31.2080, "lon": 121.4450, "area": TIANPING},
        {"id": "wq-1", "metrics": ["ph", "do"], "lat": 31.2410, "lon": 121.4910, "area": WAITAN},
    ],
    "metrics": {
        "pm25": {
            "unit": "ug/m3",
            "accepted_units": ["ug/m3"],
            "range": [0, 2000],
            "description": "PM2.5",
        },
        "ph": {"unit": "pH", "accepted_units": ["pH"], "range": [0, 14], "description": "pH"},
        "do": {
            "unit": "mg/l",
            "accepted_units": ["mg/l"],
            "range": [0, 30],
            "description": "dissolved oxygen",
        },
    },
    "rules": [
        {
            "id": "pm25-count",
            "metric": "pm25",
            "scope": "sensor",
            "condition": "above",
            "levels": [
                {"severity": "blue", "threshold": 75},
                {"severity": "yellow", "threshold": 115},
                {"severity": "orange", "threshold": 150},
                {"severity": "red", "threshold": 250},
            ],
            "for": {"count": 3},
            "clear": 60,
        },
        {
            "id": "pm25-district",
            "metric": "pm25",
            "scope": {"area": "district", "window": "10m", "statistic": "mean"},
            "condition": "above",
            "levels": [
                {"severity": "yellow", "threshold": 115},
                {"severity": "red", "threshold": 250},
            ],
            "for": {"count": 1},
            "clear": 100,
        },
        {
            "id": "do-low",
            "metric": "do",
            "scope": "sensor",
            "condition": "below",
            "levels": [
                {"severity": "blue", "threshold": 5},
                {"severity": "yellow", "threshold": 3},
                {"severity": "orange", "threshold": 2},
            ],
            "for": {"duration": "10m"},
            "clear": 6,
        },
        {
            "id": "ph-band",
            "metric": "ph",
            "scope": "sensor",
            "condition": "outside",
            "levels": [
                {"severity": "blue", "low": 6, "high": 9},
                {"severity": "orange", "low": 5, "high": 10},
            ],
            "for": {"count": 2},
            "clear": {"low": 6.5, "high": 8.5},
        },
    ],
    "report_categories": [
        {
            "id": "water_leak",
            "name": "漏水",
            "urgent": False,
            "severity": "yellow",
            "cluster": {"count": 3, "radius_m": 300, "window": "30m"},
        },
        {
            "id": "noise",
            "name": "噪声",
            "urgent": False,
            "severity": "blue",
            "cluster": {"count": 2, "radius_m": 100, "window": "10m"},
        },
        {"id": "gas_smell", "name": "燃气异味", "urgent": True, "severity": "red"},
    ],
    "sla": {
        "red": {"ack": "15m", "resolve": "4h"},
        "orange": {"ack": "30m", "resolve": "8h"},
        "yellow": {"ack": "2h", "resolve": "24h"},
        "blue": {"ack": "8h", "resolve": "72h"},
    },
    "escalation": {"enabled": True, "top_level": "city"},
    "aggregation": {
        "window": "1m",
        "allowed_lateness": "0s",
        "levels": ["street", "district", "city"],
    },
    "sinks": {"store": "chdb", "chdb": {"path": "data/chdb"}},
}


def topology(**override: Any) -> Topology:
    """The test city, with top-level sections replaced (e.g. ``aggregation=...``)."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(override))
    return parse_topology(data, Path("."))


def with_lateness(seconds: int) -> Topology:
    agg = dict(BASE["aggregation"], allowed_lateness=f"{seconds}s")
    return topology(aggregation=agg)


def areas_of(street: str) -> AdminCodes:
    return AdminCodes(district=PARENT[street], street=street)


def reading(
    sensor: str, minute: float, value: float, metric: str = "pm25", event_id: str | None = None
) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(
        event_id=event_id or f"{sensor}-{metric}-{minute:g}",
        sensor_id=sensor,
        metric=metric,
        value=value,
        unit="ug/m3",
        observed_at=at,
        location=None,
        areas=areas_of(SENSOR_AREAS[sensor]),
        source_format="canonical",
    )


def report(
    report_id: str,
    minute: float,
    category: str = "water_leak",
    lat: float | None = 31.2365,
    lon: float | None = 121.4790,
    street: str = NANJING_EAST,
    urgent: bool = False,
) -> CitizenReport:
    return CitizenReport(
        report_id=report_id,
        channel="hotline",
        category=category,
        description="water on the road",
        location=None if lat is None or lon is None else GeoPoint(lat=lat, lon=lon),
        areas=areas_of(street),
        reported_at=T0 + timedelta(minutes=minute),
        urgent=urgent,
        source_format="canonical",
    )
