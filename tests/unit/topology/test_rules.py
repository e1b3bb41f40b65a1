"""The rules section: graded levels, clear values, holds, scopes, references."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipeline.models import AreaLevel, Severity
from pipeline.topology import (
    AreaScope,
    Band,
    load_topology,
)
from tests.unit.topology.demo_edits import DEMO, errors_after, valid_after


def test_rule_shapes() -> None:
    topo = load_topology(DEMO)
    pm25, noise, pressure = topo.rules
    assert pm25.scope == "sensor" and pm25.condition == "above"
    assert [(lv.severity, lv.threshold) for lv in pm25.levels] == [
        (Severity.blue, 75),
        (Severity.yellow, 115),
        (Severity.orange, 150),
        (Severity.red, 250),
    ]
    assert pm25.for_.count == 2 and pm25.for_.duration is None
    assert pm25.clear == 60
    assert isinstance(noise.scope, AreaScope)
    assert noise.scope.area == AreaLevel.district and noise.scope.window == timedelta(minutes=1)
    assert pressure.for_.duration == timedelta(minutes=2) and pressure.for_.count is None


def test_rule_metric_must_be_in_the_catalogue() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][1]["metric"] = "nox"

    assert errors_after(mutate) == [
        ("rules[1].metric", "unknown metric 'nox' (known: noise_laeq, pm10, pm25, water_pressure)")
    ]


def test_above_thresholds_ascend_with_severity() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["levels"][2]["threshold"] = 115

    assert errors_after(mutate) == [
        ("rules[0].levels[2].threshold", "must be greater than 115 (the yellow level)")
    ]


def test_below_thresholds_descend_with_severity() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][2]["levels"][1]["threshold"] = 170

    assert errors_after(mutate) == [
        ("rules[2].levels[1].threshold", "must be less than 160 (the yellow level)")
    ]


def test_each_severity_once_and_in_order() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["levels"][1]["severity"] = "blue"
        d["rules"][1]["levels"] = [
            {"severity": "yellow", "threshold": 60},
            {"severity": "blue", "threshold": 70},
        ]

    assert errors_after(mutate) == [
        (
            "rules[0].levels[1].severity",
            "blue is already levels[0] (each severity at most once per rule)",
        ),
        (
            "rules[1].levels[1].severity",
            "blue is listed after a higher severity; list levels from blue up",
        ),
    ]


def outside_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "pm25-band",
        "metric": "pm25",
        "condition": "outside",
        "levels": [
            {"severity": "blue", "low": 6, "high": 9},
            {"severity": "yellow", "low": 5, "high": 10},
        ],
        "clear": {"low": 6.5, "high": 8.5},
    }
    rule.update(changes)
    return rule


def test_outside_band_is_valid_and_widens() -> None:
    topo = valid_after(lambda d: d["rules"].append(outside_rule()))
    rule = topo.rules[-1]
    assert rule.clear == Band(low=6.5, high=8.5)
    assert (rule.levels[1].low, rule.levels[1].high) == (5, 10)


def test_outside_band_must_widen() -> None:
    levels = [
        {"severity": "blue", "low": 6, "high": 9},
        {"severity": "yellow", "low": 6.5, "high": 8},
        {"severity": "orange", "low": 6.5, "high": 8},
    ]
    errors = errors_after(lambda d: d["rules"].append(outside_rule(levels=levels, clear=None)))
    assert errors == [
        (
            "rules[3].levels[1].low",
            "must be at most 6 (the blue level): the band widens with severity",
        ),
        (
            "rules[3].levels[1].high",
            "must be at least 9 (the blue level): the band widens with severity",
        ),
        ("rules[3].levels[2]", "must be wider than the yellow band"),
    ]


def test_outside_needs_low_and_high() -> None:
    levels = [{"severity": "blue", "threshold": 6}]
    errors = errors_after(lambda d: d["rules"].append(outside_rule(levels=levels, clear=None)))
    assert errors == [
        ("rules[3].levels[0].threshold", "use low and high for 'outside'"),
        ("rules[3].levels[0].low", "is required for condition 'outside'"),
        ("rules[3].levels[0].high", "is required for condition 'outside'"),
    ]


def test_above_needs_a_threshold() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["levels"][0] = {"severity": "blue", "low": 1, "high": 2}

    assert errors_after(mutate) == [
        ("rules[0].levels[0].threshold", "is required for condition 'above'"),
        ("rules[0].levels[0].low", "only for condition 'outside'"),
        ("rules[0].levels[0].high", "only for condition 'outside'"),
    ]


def test_clear_on_the_safe_side() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["clear"] = 75
        d["rules"][2]["clear"] = 150
        d["rules"].append(outside_rule(clear={"low": 5, "high": 8}))

    assert errors_after(mutate) == [
        ("rules[0].clear", "must be below 75 (the blue threshold)"),
        ("rules[2].clear", "must be above 160 (the yellow threshold)"),
        ("rules[3].clear.low", "must be at least 6 (the blue level)"),
    ]


def test_clear_shape_matches_the_condition() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["clear"] = {"low": 1, "high": 2}
        d["rules"].append(outside_rule(clear=7))

    assert errors_after(mutate) == [
        ("rules[0].clear", "must be a number for condition 'above'"),
        ("rules[3].clear", "must be a band {low, high} for condition 'outside'"),
    ]


def test_thresholds_within_the_metric_range() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["levels"][3]["threshold"] = 2500

    assert errors_after(mutate) == [
        ("rules[0].levels[3].threshold", "2500 is outside pm25's range [0, 2000] ug/m3")
    ]


def test_for_takes_exactly_one_of_count_or_duration() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["for"] = {"count": 2, "duration": "5m"}
        d["rules"][1]["for"] = {}

    assert errors_after(mutate) == [
        ("rules[0].for", "give exactly one of count or duration"),
        ("rules[1].for", "give exactly one of count or duration"),
    ]


def test_scope_errors_have_clean_paths() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][1]["scope"] = {"area": "district", "window": "soon"}
        d["rules"][0]["scope"] = "everywhere"
        d["rules"][2]["condition"] = "sideways"

    errors = errors_after(mutate)
    assert (
        "rules[1].scope.window",
        "'soon' is not a duration (use e.g. 30s, 5m, 1h30m, 3d or seconds)",
    ) in errors
    assert ("rules[0].scope", "must be 'sensor', got 'everywhere'") in errors
    assert ("rules[2].condition", "must be 'above', 'below' or 'outside', got 'sideways'") in errors
    assert len(errors) == 3


def test_duplicate_rule_id() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][1]["id"] = "pm25-high"

    assert errors_after(mutate) == [("rules[1].id", "duplicate rule id 'pm25-high'")]


def test_area_scope_level_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][1]["scope"]["area"] = "grid"

    assert errors_after(mutate) == [("rules[1].scope.area", "no area has level grid")]
