"""The sla and escalation sections: an SLA per severity; the levels escalation names exist."""

from __future__ import annotations

from typing import Any

from tests.unit.topology.demo_edits import errors_after


def test_sla_for_every_severity() -> None:
    def mutate(d: dict[str, Any]) -> None:
        del d["sla"]["orange"]
        d["sla"]["red"]["ack"] = "10m"

    assert errors_after(mutate) == [
        ("sla.red.ack", "must not be longer than resolve"),
        ("sla.orange", "is required: every severity needs an SLA"),
    ]


def test_sla_unknown_severity_key() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sla"]["purple"] = {"ack": "1m", "resolve": "2m"}

    errors = errors_after(mutate)
    assert errors == [
        ("sla.purple", "key must be 'blue', 'yellow', 'orange' or 'red', got 'purple'")
    ]


def test_escalation_and_aggregation_levels_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["escalation"]["top_level"] = "grid"
        d["aggregation"]["levels"] = ["street", "community"]

    assert errors_after(mutate) == [
        ("aggregation.levels[1]", "aggregates exist for grid, street, district and city only"),
        ("escalation.top_level", "no area has level grid"),
    ]
