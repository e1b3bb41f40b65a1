"""The report_categories section: unique ids, urgent or clustered."""

from __future__ import annotations

from typing import Any

from tests.unit.topology.demo_edits import errors_after


def test_duplicate_report_category() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["report_categories"].append({"id": "gas_smell", "name": "x", "severity": "red"})

    assert errors_after(mutate) == [
        ("report_categories[2].id", "duplicate category id 'gas_smell'")
    ]


def test_urgent_category_has_no_cluster() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["report_categories"][1]["cluster"] = {"count": 2, "radius_m": 10, "window": "1m"}

    assert errors_after(mutate) == [
        (
            "report_categories[1].cluster",
            "an urgent category opens an incident at once; remove cluster or set urgent: false",
        )
    ]
