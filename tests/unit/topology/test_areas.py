"""The areas section: unique codes, one city, parents one level up."""

from __future__ import annotations

from typing import Any

from tests.unit.topology.demo_edits import errors_after, valid_after


def test_duplicate_area_code() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"].append({"code": "310104", "level": "district", "parent": "310000", "name": "x"})

    assert errors_after(mutate) == [("areas[8].code", "duplicate code 310104 (also areas[5])")]


def test_unknown_parent() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"][2]["parent"] = "310199"

    assert errors_after(mutate) == [("areas[2].parent", "unknown area 310199")]


def test_parent_must_be_exactly_one_level_up() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"][2]["parent"] = "310000"

    assert errors_after(mutate) == [
        ("areas[2].parent", "310000 is a city; the parent of a street must be a district")
    ]


def test_missing_parent_and_city_parent() -> None:
    def mutate(d: dict[str, Any]) -> None:
        del d["areas"][1]["parent"]
        d["areas"][0]["parent"] = "310101"

    assert errors_after(mutate) == [
        ("areas[0].parent", "a city has no parent"),
        ("areas[1].parent", "is required: a district needs its city"),
    ]


def test_street_code_must_start_with_its_district_code() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"][2]["code"] = "310104002"
        d["sensors"][0]["area"] = "310104002"

    assert errors_after(mutate) == [("areas[2].code", "must start with its district's code 310101")]


def test_exactly_one_city() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"].append({"code": "320000", "level": "city", "name": "南京"})

    assert errors_after(mutate) == [("areas[8].level", "a second city (areas[0] is the city)")]


def test_unquoted_codes_are_read_as_strings() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["areas"][0]["code"] = 310000
        for area in d["areas"][1:]:
            if area["parent"] == "310000":
                area["parent"] = 310000

    assert valid_after(mutate).city.code == "310000"
