"""Citizen reports: where people complain, about what, and the personal data they leave.

Why: report clustering, incident routing and PII masking need reports that behave like
real ones. Most reports gather around active problems (water leaks at a burst main, noise
complaints at a noisy site, a ``problem_share`` of them while any problem is visible);
the rest are background reports anywhere, of any category (urgent ones rarer). Texts are
Chinese; some carry a (fake) mobile or landline number or a checksummed resident ID.

Report positions always lie inside the topology's boundaries; a topology without
boundaries gets ``area`` only (a point could not be resolved to an area there).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TypeVar

import orjson

from pipeline.ingest.geo import AreaResolver
from pipeline.sim.episodes import PROBLEM_CATEGORIES, Episode
from pipeline.sim.events import SimEvent, iso_utc
from pipeline.sim.world import EARTH_M_PER_DEG, Place, SensorWorld
from pipeline.topology import ReportCategory, Topology

__all__ = ["ReportWriter", "resident_id_check"]

_T = TypeVar("_T")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "water_leak": (
        "{place}路边自来水管爆裂，水一直往外冒，地面已经积水",
        "{place}小区门口地下渗水，家里水压很低",
        "{place}附近人行道上水管漏水，已经流了半个多小时",
    ),
    "flooding": (
        "{place}路口积水很深，车辆无法通行，请尽快处理",
        "{place}地下通道进水，行人被困",
    ),
    "noise_complaint": (
        "{place}工地深夜还在施工，噪音很大，影响休息",
        "{place}附近商铺音响声音太大，持续好几个小时",
        "{place}夜间有机械作业，吵得睡不着",
    ),
    "road_damage": (
        "{place}路面坑洼严重，电动车容易摔倒",
        "{place}道路塌陷一块，已有车辆受损",
    ),
    "illegal_dumping": ("{place}路边有人乱倒建筑垃圾", "{place}绿化带里堆满生活垃圾，气味很大"),
    "streetlight_out": ("{place}一整排路灯不亮，晚上很危险", "{place}路灯忽明忽暗好几天了"),
    "manhole_cover": ("{place}人行道上井盖缺失，很危险，请马上处理",),
    "gas_smell": ("{place}楼道里有很浓的燃气味，请立即派人", "{place}餐馆后门闻到煤气味"),
}
_CHANNELS: tuple[tuple[str, float], ...] = (("hotline", 0.5), ("app", 0.35), ("wechat", 0.15))
_MOBILE_HEADS = ("138", "139", "136", "150", "151", "158", "186", "188", "177", "199")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

Problems = list[tuple[Episode, float]]


def resident_id_check(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


class ReportWriter:
    """Writes the citizen reports of one run (ids ``rpt-<run token>-<number>``)."""

    def __init__(
        self,
        world: SensorWorld,
        rng: random.Random,
        *,
        topic: str,
        token: str,
        problem_share: float,
    ) -> None:
        topology: Topology = world.topology
        self.topology = topology
        self.topic = topic
        self._world = world
        self._rng = rng
        self._token = token
        self._problem_share = problem_share
        self._categories = {c.id: c for c in topology.report_categories}
        self._geo = AreaResolver(topology) if topology.boundary_features() else None

    def report(self, t: int, number: int, problems: Problems) -> SimEvent:
        """Report ``number`` at ``t`` (µs): near a visible problem, or anywhere."""
        rng = self._rng
        if problems and rng.random() < self._problem_share:
            episode = _weighted(rng, [(ep, w) for ep, w in problems])
            options = PROBLEM_CATEGORIES.get(episode.metric, ())
            names = [(c, w) for c, w in options if c in self._categories]
            category = episode.category or ""
            if names and category == names[0][0]:
                category = _weighted(rng, names)
            lat0, lon0 = episode.hotspot or self._world.centroid(episode.district)
            point = _jitter(rng, lat0, lon0, 120.0)
            place = self._world.nearest(*point)
            where = self._locate(point, (lat0, lon0))
            return self._event(t, number, self._categories[category], place, where)
        weights = [(c, 0.15 if c.urgent else 1.0) for c in self.topology.report_categories]
        chosen = _weighted(rng, weights)
        place = rng.choice(self._world.places)
        point = _jitter(rng, place.lat, place.lon, 400.0)
        where = self._locate(point, (place.lat, place.lon))
        return self._event(t, number, chosen, place, where)

    def _locate(
        self, point: tuple[float, float], anchor: tuple[float, float]
    ) -> tuple[float, float] | None:
        """A position inside the topology's boundaries: the point, else its anchor, else None.

        Without boundaries a position cannot be resolved to an area, so the report names
        its ``area`` only (it then cannot join a radius cluster).
        """
        if self._geo is None:
            return None
        for lat, lon in (point, anchor):
            if self._geo.smallest(lat, lon) is not None:
                return lat, lon
        return None

    def _event(
        self,
        t: int,
        number: int,
        cat: ReportCategory,
        place: Place,
        where: tuple[float, float] | None,
    ) -> SimEvent:
        rng = self._rng
        report_id = f"rpt-{self._token}-{number:06d}"
        text = self._description(cat, place)
        urgent = cat.urgent or rng.random() < 0.03
        doc: dict[str, object] = {
            "report_id": report_id,
            "channel": _weighted(rng, list(_CHANNELS)),
            "category": cat.id,
            "description": text,
        }
        if where is not None:
            doc["lat"] = round(where[0], 6)
            doc["lon"] = round(where[1], 6)
        doc |= {
            "area": place.area,
            "reported_at": iso_utc(t),
            "urgent": urgent,
        }
        return SimEvent(self.topic, report_id.encode(), orjson.dumps(doc), t)

    def _description(self, cat: ReportCategory, place: Place) -> str:
        """A Chinese text naming the place; 30 % leave a phone number or an ID number."""
        rng = self._rng
        name = self.topology.area(place.area).name
        templates = _TEMPLATES.get(cat.id) or (f"{{place}}附近发现{cat.name}，请尽快派人处理",)
        text = rng.choice(templates).format(place=name)
        roll = rng.random()
        if roll < 0.2:
            text += f"，联系电话{self._mobile()}"
        elif roll < 0.25:
            text += f"，座机021-{rng.randrange(5, 7)}{rng.randrange(10**6, 10**7)}"
        elif roll < 0.3:
            text += f"，我是业主，身份证号{self._resident_id(place)}，请回电"
        return text

    def _mobile(self) -> str:
        rng = self._rng
        head = rng.choice(_MOBILE_HEADS)
        mid, tail = f"{rng.randrange(10_000):04d}", f"{rng.randrange(10_000):04d}"
        return rng.choice((f"{head}{mid}{tail}", f"+86 {head}{mid}{tail}", f"{head}-{mid}-{tail}"))

    def _resident_id(self, place: Place) -> str:
        """A fake but checksummed GB 11643 number, born 1950-2005, registered locally."""
        rng = self._rng
        region = (place.district or place.area)[:6]
        if not (region.isdigit() and len(region) == 6):
            region = "310101"
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        first17 = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
        return first17 + resident_id_check(first17)


def _weighted(rng: random.Random, options: Sequence[tuple[_T, float]]) -> _T:
    total = sum(w for _, w in options)
    pick = rng.random() * total
    for item, weight in options:
        pick -= weight
        if pick < 0:
            return item
    return options[-1][0]


def _jitter(rng: random.Random, lat: float, lon: float, sigma_m: float) -> tuple[float, float]:
    dy = rng.gauss(0.0, sigma_m)
    dx = rng.gauss(0.0, sigma_m)
    lat2 = lat + dy / EARTH_M_PER_DEG
    lon2 = lon + dx / (EARTH_M_PER_DEG * max(math.cos(math.radians(lat)), 0.01))
    return max(-90.0, min(90.0, lat2)), max(-180.0, min(180.0, lon2))
