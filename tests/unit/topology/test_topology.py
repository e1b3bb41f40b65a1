"""Topology validation: every cross-check with its exact path and message; the API."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.models import AreaLevel, Severity
from pipeline.topology import (
    TOPIC_KINDS,
    AreaScope,
    Band,
    Topology,
    TopologyError,
    load_topology,
    parse_topology,
)
from pipeline.topology.durations import format_duration, parse_duration, parse_retention
from tests.support.paths import TOPOLOGIES

DEMO = TOPOLOGIES / "demo.yaml"
BASE: dict[str, Any] = yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def errors_after(mutate: Callable[[dict[str, Any]], None]) -> list[tuple[str, str]]:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, TOPOLOGIES)
    return caught.value.errors


def valid_after(mutate: Callable[[dict[str, Any]], None]) -> Topology:
    data = copy.deepcopy(BASE)
    mutate(data)
    return parse_topology(data, TOPOLOGIES)


# --------------------------------------------------------------------------- the demo


def test_demo_loads_with_derived_lookups() -> None:
    topo = load_topology(DEMO)
    assert topo.id == "demo"
    assert topo.base_dir == TOPOLOGIES
    assert topo.city.code == "310000"
    assert topo.area("310101002").name_en == "Nanjing East Road"
    assert [a.code for a in topo.ancestors("310101002")] == ["310101002", "310101", "310000"]
    assert topo.admin_codes("310104014") == {
        AreaLevel.street: "310104014",
        AreaLevel.district: "310104",
        AreaLevel.city: "310000",
    }
    assert topo.admin_codes("310104") == {"district": "310104", "city": "310000"}
    sensor = topo.sensor("aq-001")
    assert sensor is not None and sensor.metrics == ("pm25", "pm10")
    assert topo.sensor("nope") is None
    with pytest.raises(KeyError):
        topo.area("999999")
    assert topo.sla[Severity.red].ack == timedelta(minutes=1)
    assert topo.aggregation.window == timedelta(minutes=1)
    assert topo.aggregation.allowed_lateness == timedelta(seconds=10)
    assert topo.boundary_features() == []
    assert topo.areas_containing(31.23, 121.48) == []


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


def test_metric_units_are_canonical_and_include_the_unit() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"] = {"unit": "GQ", "accepted_units": ["GP"], "range": [0, 1000]}

    metric = valid_after(mutate).metrics["pm25"]
    assert metric.unit == "ug/m3"
    assert metric.accepted_units == ("ug/m3", "mg/m3")
    assert metric.to_canonical(0.1, "mg/m3") == pytest.approx(100.0)
    assert not metric.accepts("km/h")


def test_topics_and_topic_plan() -> None:
    topo = load_topology(DEMO)
    assert topo.topics.name("raw_sensors") == "cityops.demo.sensors.raw"
    assert topo.topics.name("incidents_city") == "cityops.demo.incidents.city"
    assert topo.topics.name("incidents_district", "310101") == (
        "cityops.demo.incidents.district.310101"
    )
    assert topo.topics.name("incidents_street", "310101002") == (
        "cityops.demo.incidents.street.310101002"
    )
    assert topo.topics.name("audit") == "cityops.demo.incidents.audit"
    with pytest.raises(ValueError, match="needs an area code"):
        topo.topics.name("incidents_street")
    with pytest.raises(ValueError, match="unknown topic kind"):
        topo.topics.name("bogus")  # type: ignore[arg-type]
    plan = {spec.name: spec for spec in topo.topic_plan()}
    assert len(plan) == len(TOPIC_KINDS) - 2 + 2 + 5  # fixed kinds, 2 districts, 5 streets
    city = plan["cityops.demo.incidents.city"]
    assert city.partitions == 3
    assert city.config == {"cleanup.policy": "compact,delete", "retention.ms": str(30 * 86400000)}
    assert plan["cityops.demo.incidents.audit"].config["retention.ms"] == "-1"
    assert plan["cityops.demo.readings"].config == {
        "cleanup.policy": "delete",
        "retention.ms": str(3 * 86400000),
    }
    assert plan["cityops.demo.incidents.street.310104011"].partitions == 1


# --------------------------------------------------------------------------- areas


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


# --------------------------------------------------------------------------- sensors, streams


def test_sensor_area_and_metrics_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][0]["area"] = "310101999"
        d["sensors"][1]["metrics"] = ["pm25", "pm1"]

    assert errors_after(mutate) == [
        ("sensors[0].area", "unknown area '310101999'"),
        ("sensors[1].metrics[1]", "unknown metric 'pm1' (not in metrics)"),
    ]


def test_duplicate_sensor_and_repeated_metric() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][1]["id"] = "aq-001"
        d["sensors"][2]["metrics"] = ["noise_laeq", "noise_laeq"]

    assert errors_after(mutate) == [
        ("sensors[2].metrics[1]", "'noise_laeq' is listed twice"),
        ("sensors[1].id", "duplicate sensor id 'aq-001'"),
        ("datastreams.2.sensor", "unknown sensor 'aq-002'"),
    ]


def test_sensor_coordinates_are_range_checked() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sensors"][0]["lat"] = 91

    assert errors_after(mutate) == [("sensors[0].lat", "must be less than or equal to 90")]


def test_datastreams_reference_known_sensors_and_their_metrics() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["datastreams"]["7"] = {"sensor": "ghost", "metric": "pm25"}
        d["datastreams"]["8"] = {"sensor": "noise-001", "metric": "pm25"}
        d["datastreams"]["9"] = {"sensor": "aq-001", "metric": "nox"}

    assert errors_after(mutate) == [
        ("datastreams.7.sensor", "unknown sensor 'ghost'"),
        ("datastreams.8.metric", "sensor noise-001 does not measure pm25"),
        ("datastreams.9.metric", "unknown metric 'nox'"),
    ]


def test_integer_datastream_ids_are_accepted() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["datastreams"] = {42: {"sensor": "aq-001", "metric": "pm25"}}

    assert set(valid_after(mutate).datastreams) == {"42"}


# --------------------------------------------------------------------------- metrics


def test_unknown_units_and_dimension_mismatch() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"]["unit"] = "furlong"
        d["metrics"]["pm10"]["accepted_units"] = ["ug/m3", "km/h", "parsec"]

    assert errors_after(mutate) == [
        ("metrics.pm25.unit", "unknown unit 'furlong' (see docs/topology.md for known units)"),
        ("metrics.pm10.accepted_units[1]", "km/h cannot be converted to ug/m3"),
        ("metrics.pm10.accepted_units[2]", "unknown unit 'parsec'"),
    ]


def test_range_must_ascend() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["metrics"]["pm25"]["range"] = [10, 10]

    assert errors_after(mutate) == [("metrics.pm25.range", "min 10 must be less than max 10")]


# --------------------------------------------------------------------------- rules


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


# --------------------------------------------------------------------------- reports, SLA, sinks


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


@pytest.mark.parametrize("key", ["password", "user", "url"])
def test_literal_credentials_are_refused(key: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sinks"]["clickhouse"][key] = "hunter2"

    [(path, message)] = errors_after(mutate)
    assert path == f"sinks.clickhouse.{key}"
    assert message.startswith("credentials never go into a topology; name the environment variable")
    assert "hunter2" not in message


def test_env_names_must_look_like_env_names() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sinks"]["clickhouse"]["password_env"] = "my password"  # noqa: S105

    [(path, message)] = errors_after(mutate)
    assert path == "sinks.clickhouse.password_env"
    assert message.startswith("must match pattern")


def test_escalation_and_aggregation_levels_must_exist() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["escalation"]["top_level"] = "grid"
        d["aggregation"]["levels"] = ["street", "community"]

    assert errors_after(mutate) == [
        ("aggregation.levels[1]", "aggregates exist for street, district and city only"),
        ("escalation.top_level", "no area has level grid"),
    ]


# --------------------------------------------------------------------------- structure


def test_unknown_and_missing_sections() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rulez"] = []
        del d["metrics"]

    errors = errors_after(mutate)
    assert errors[0][0] == "rulez" and errors[0][1].startswith("unknown section (known: id, name")
    assert ("metrics", "is required") in errors


def test_unknown_key_inside_a_section() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["rules"][0]["threshold"] = 3

    assert errors_after(mutate) == [
        ("rules[0].threshold", "unknown key (not part of the topology format)")
    ]


def test_errors_in_several_sections_are_all_reported() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["timezone"] = "Mars/Olympus"
        d["topics"]["retention"]["raw"] = "3x"
        d["metrics"]["pm25"]["unit"] = "furlong"
        d["sensors"][1]["metrics"].append("pm1")
        d["rules"][0]["levels"][2]["threshold"] = 100

    paths = [p for p, _ in errors_after(mutate)]
    assert paths == [
        "timezone",
        "topics.retention.raw",
        "metrics.pm25.unit",
        "rules[0].levels[2].threshold",
        "sensors[1].metrics[2]",
    ]


def test_str_lists_every_error_on_its_own_line() -> None:
    err = TopologyError([("a.b", "one"), ("c[0]", "two")])
    assert str(err) == "a.b: one\nc[0]: two"


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_non_mapping_is_refused(data: object) -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, TOPOLOGIES)
    [(path, message)] = caught.value.errors
    assert path == "" and message.startswith("a topology must be a mapping")


# --------------------------------------------------------------------------- files


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology(tmp_path / "missing.yaml")
    [(path, message)] = caught.value.errors
    assert path.endswith("missing.yaml") and "No such file" in message


def test_yaml_syntax_error_has_a_line_number(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nname: [unclosed\nareas: []\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    [(path, message)] = caught.value.errors
    assert path.startswith("line 3, column")
    assert message.startswith("invalid YAML")


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text("id: x\nid: y\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    assert caught.value.errors == [("line 2, column 1", "invalid YAML: duplicate key 'id'")]


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    bad = tmp_path / "evil.yaml"
    bad.write_text("id: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(TopologyError) as caught:
        load_topology(bad)
    [(path, message)] = caught.value.errors
    assert path.startswith("line 1") and "could not determine a constructor" in message


def test_sensor_registry_file_csv(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(
        "id,kind,metrics,lat,lon,area\n"
        "a-1,air,pm25 pm10,31.2,121.4,310101002\n"
        "a-2,air,pm25,95,121.4,310101\n",
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["sensors"] = {"file": "s.csv"}
    del data["datastreams"]
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors == [("sensors.file[1].lat", "must be less than or equal to 90")]
    (tmp_path / "s.csv").write_text(
        "id,kind,metrics,lat,lon,area\na-1,air,pm25 pm10,31.2,121.4,310101002\n", encoding="utf-8"
    )
    topo = parse_topology(data, tmp_path)
    sensor = topo.sensor("a-1")
    assert sensor is not None and sensor.metrics == ("pm25", "pm10") and sensor.kind == "air"


def test_sensor_registry_file_missing(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["sensors"] = {"file": "nope.csv"}
    del data["datastreams"]
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    [(path, message)] = caught.value.errors
    assert path == "sensors.file" and message.startswith("cannot read")


def test_boundary_codes_must_be_known(tmp_path: Path) -> None:
    (tmp_path / "b.geojson").write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"999"},'
        '"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}',
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["boundaries"] = "b.geojson"
    with pytest.raises(TopologyError) as caught:
        parse_topology(data, tmp_path)
    assert caught.value.errors == [
        ("boundaries[0] (b.geojson features[0])", "properties.code '999' is not a known area")
    ]


def test_boundaries_resolve_points(tmp_path: Path) -> None:
    (tmp_path / "b.geojson").write_text(
        '{"type":"FeatureCollection","features":['
        '{"type":"Feature","properties":{"code":"310101"},'
        '"geometry":{"type":"Polygon","coordinates":[[[121,31],[122,31],[122,32],[121,31]]]}},'
        '{"type":"Feature","properties":{"code":"310101002"},'
        '"geometry":{"type":"Polygon","coordinates":[[[121.5,31.1],[121.9,31.1],[121.9,31.4],[121.5,31.1]]]}}'
        "]}",
        encoding="utf-8",
    )
    data = copy.deepcopy(BASE)
    data["boundaries"] = ["b.geojson"]
    topo = parse_topology(data, tmp_path)
    assert [code for code, _ in topo.boundary_features()] == ["310101", "310101002"]
    assert topo.areas_containing(31.2, 121.8) == ["310101002", "310101"]
    assert topo.areas_containing(31.5, 121.2) == []


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("3d", 259200),
        ("2w", 1209600),
        (45, 45),
        ("250ms", 0.25),
        ("90", 90),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "-1s", 0, -3, True, None, "1y", 10**400])
def test_parse_duration_refuses(bad: object) -> None:
    if bad == "5":
        assert parse_duration(bad) == timedelta(seconds=5)
        return
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_retention_forever_and_format() -> None:
    assert parse_retention(-1) is None
    assert parse_retention("forever") is None
    assert parse_retention("7d") == timedelta(days=7)
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(None) == "forever"
