"""`/aggregates` parameters: every bad one is a 400 with the reason, never a 500."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from pipeline.engine.worker.web import AggregatesQuery, BadQuery, aggregates_endpoint
from pipeline.models import AreaLevel
from pipeline.sinks.memory import MemoryStore

GOOD = {"area": "310101", "metric": "pm25", "level": "district"}


@dataclass
class Answer:
    body: dict[str, Any]
    status: int


class Web:
    """What the endpoint uses of Faust's web object: ``json(body, status=...)``."""

    def json(self, body: dict[str, Any], status: int = 200) -> Answer:
        return Answer(body, status)


@dataclass
class Request:
    query: dict[str, str]


def call(params: dict[str, str]) -> Answer:
    store = MemoryStore()
    store.init()
    answer: Answer = asyncio.run(aggregates_endpoint(Web(), Request(params), store))
    return answer


def test_a_good_query_parses_and_answers_200() -> None:
    query = AggregatesQuery.parse({**GOOD, "since": "7200"})
    assert query == AggregatesQuery("310101", "pm25", AreaLevel.district, timedelta(hours=2))
    answer = call({**GOOD, "since": "60"})
    assert (answer.status, answer.body) == (200, {"rows": []})


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {**GOOD, "since": "1e12"},
            "since must be a number of seconds in (0, 316224000], got '1e12'",
        ),
        (
            {**GOOD, "since": "inf"},
            "since must be a number of seconds in (0, 316224000], got 'inf'",
        ),
        (
            {**GOOD, "since": "-inf"},
            "since must be a number of seconds in (0, 316224000], got '-inf'",
        ),
        (
            {**GOOD, "since": "nan"},
            "since must be a number of seconds in (0, 316224000], got 'nan'",
        ),
        ({**GOOD, "since": "0"}, "since must be a number of seconds in (0, 316224000], got '0'"),
        ({**GOOD, "since": "1h"}, "since must be a number of seconds, got '1h'"),
        (
            {**GOOD, "since": "9" * 400},
            "since must be a number of seconds in (0, 316224000], got '99999999999999999...'",
        ),
        (
            {**GOOD, "level": "planet"},
            "level must be one of city, district, street, grid, community, got 'planet'",
        ),
        ({"metric": "pm25"}, "area is required"),
        ({"area": "310101"}, "metric is required"),
        ({**GOOD, "area": "x" * 5000}, "area is longer than 200 characters"),
    ],
)
def test_bad_parameters_are_400_with_the_reason(params: dict[str, str], reason: str) -> None:
    with pytest.raises(BadQuery) as caught:
        AggregatesQuery.parse(params)
    assert str(caught.value) == reason
    answer = call(params)
    assert (answer.status, answer.body) == (400, {"error": f"bad query: {reason}"})
