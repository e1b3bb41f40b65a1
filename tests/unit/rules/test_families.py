"""The rule-family registry: every rule finds its family, every state its codec, and a
second family plugs in without touching the first."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from pipeline.aggregates.watermark import Progress
from pipeline.models import Reading, ReadingRow
from pipeline.rules.detection import THRESHOLD, DetectorState
from pipeline.rules.families import (
    DEFAULT_KIND,
    FAMILIES,
    FAMILY_FIELD,
    REGISTRY,
    Registry,
    family_for,
    state_from_dict,
    state_key,
    state_to_dict,
)
from pipeline.rules.lifecycle import IncidentEvent
from pipeline.topology import Topology, load_topology
from tests.unit.rules.detect_world import reading
from tests.unit.rules.streams import END, TOPO_LATE, Key, pm25_series, run_keyed

# --------------------------------------------------------------------------- a toy family


@dataclass(frozen=True)
class QuietRule:
    """A toy rule kind: the sensor sent nothing for ``after`` (a "silent sensor" rule)."""

    id: str
    after: timedelta


@dataclass
class QuietState:
    rule_id: str
    subject: str
    last_at: datetime | None = None


class QuietRunner:
    """A toy runner: remembers when each sensor last reported (no incidents yet)."""

    def __init__(self, rule: QuietRule) -> None:
        self.rule = rule
        self.rule_id = rule.id
        self.metric = "pm25"

    def subject(self, reading: ReadingRow) -> str | None:
        return reading.sensor_id

    def new_state(self, subject: str) -> QuietState:
        return QuietState(self.rule_id, subject)

    def step(
        self, state: QuietState, reading: ReadingRow, partition: str | None, progress: Progress
    ) -> tuple[QuietState, list[IncidentEvent]]:
        state.last_at = reading.to_reading().observed_at
        return state, []

    def advance(
        self, state: QuietState, watermark: datetime
    ) -> tuple[QuietState, list[IncidentEvent]]:
        return state, []

    def horizon(self) -> timedelta:
        return self.rule.after


class QuietFamily:
    kind = "quiet"
    state_type = QuietState

    def matches(self, rule: object) -> bool:
        return isinstance(rule, QuietRule)

    def runner(self, rule: QuietRule, topology: Topology) -> QuietRunner:
        return QuietRunner(rule)

    def state_to_dict(self, state: QuietState) -> dict[str, Any]:
        last = None if state.last_at is None else state.last_at.isoformat()
        return {"rule_id": state.rule_id, "subject": state.subject, "last_at": last}

    def state_from_dict(self, data: Mapping[str, Any]) -> QuietState:
        last = None if data["last_at"] is None else datetime.fromisoformat(data["last_at"])
        return QuietState(data["rule_id"], data["subject"], last)


QUIET = QuietFamily()

# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("path", sorted(Path("topologies").glob("*.yaml")), ids=str)
def test_every_shipped_rule_is_a_threshold_rule(path: Path) -> None:
    topo = load_topology(path)
    assert [family_for(rule) for rule in topo.rules] == [THRESHOLD] * len(topo.rules)
    assert FAMILIES == (THRESHOLD,) and REGISTRY.by_kind == {"threshold": THRESHOLD}


def test_a_rule_no_family_claims_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="QuietRule is claimed by no family"):
        family_for(QuietRule("quiet-1", timedelta(minutes=5)))
    with pytest.raises(ValueError, match="two rule families of kind 'threshold'"):
        Registry([THRESHOLD, THRESHOLD])


def test_states_carry_their_family_and_untagged_ones_are_threshold_states() -> None:
    rule = TOPO_LATE.rules[0]
    runner = THRESHOLD.runner(rule, TOPO_LATE)
    fresh = runner.new_state("aq-1")
    state, _ = runner.step(fresh, ReadingRow.of(reading("aq-1", 0, 80)), None, {})
    data = json.loads(json.dumps(state_to_dict(state)))
    assert data[FAMILY_FIELD] == DEFAULT_KIND == "threshold"
    assert {k: v for k, v in data.items() if k != FAMILY_FIELD} == state.to_dict()
    restored = state_from_dict(data)
    assert isinstance(restored, DetectorState) and restored.to_dict() == state.to_dict()
    untagged = state_from_dict(state.to_dict())  # written before rule families existed
    assert isinstance(untagged, DetectorState) and untagged.to_dict() == state.to_dict()
    with pytest.raises(ValueError, match="unknown rule family 'quiet'"):
        state_from_dict({**data, FAMILY_FIELD: "quiet"})


def test_a_second_family_plugs_in_beside_the_first() -> None:
    registry = Registry([THRESHOLD, QUIET])
    quiet_rule = QuietRule("quiet-1", timedelta(minutes=5))
    threshold_rule = TOPO_LATE.rules[0]
    assert registry.family_for(quiet_rule) is QUIET
    assert registry.family_for(threshold_rule) is THRESHOLD
    r = ReadingRow.of(reading("aq-1", 3, 80))
    quiet_runner = QUIET.runner(quiet_rule, TOPO_LATE)
    quiet, _ = quiet_runner.step(quiet_runner.new_state("aq-1"), r, None, {})
    threshold_runner = THRESHOLD.runner(threshold_rule, TOPO_LATE)
    threshold, _ = threshold_runner.step(threshold_runner.new_state("aq-1"), r, None, {})
    table = {
        state_key(s.rule_id, s.subject): json.dumps(registry.state_to_dict(s))
        for s in (quiet, threshold)
    }
    back = {key: registry.state_from_dict(json.loads(text)) for key, text in table.items()}
    assert back[state_key("quiet-1", "aq-1")] == quiet
    assert isinstance(back[state_key("pm25-count", "aq-1")], DetectorState)
    assert json.loads(table[state_key("quiet-1", "aq-1")])[FAMILY_FIELD] == "quiet"


# --------------------------------------------------------------------------- the engine's way


def run_through_registry(readings: list[Reading], topo: Topology) -> dict[Key, list[IncidentEvent]]:
    """What the detect stage does once it asks the registry: family per rule, one table of
    encoded states (decoded and encoded again around every reading)."""
    table: dict[str, dict[str, Any]] = {}
    out: dict[Key, list[IncidentEvent]] = defaultdict(list)
    for r in map(ReadingRow.of, readings):
        for rule in topo.rules:
            runner = family_for(rule).runner(rule, topo)
            subject = runner.subject(r)
            if subject is None:
                continue
            key = state_key(str(rule.id), subject)
            stored = table.get(key)
            state = runner.new_state(subject) if stored is None else state_from_dict(stored)
            state, events = runner.step(state, r, None, {})
            table[key] = state_to_dict(state)
            out[(str(rule.id), subject)] += events
    rules = {str(rule.id): rule for rule in topo.rules}
    for key in sorted(table):
        state = state_from_dict(table[key])
        rule = rules[state.rule_id]
        _, events = family_for(rule).runner(rule, topo).advance(state, END)
        out[(state.rule_id, state.subject)] += events
    return {k: v for k, v in out.items() if v}


@settings(max_examples=80, deadline=None)
@given(pm25_series())
def test_the_registry_path_emits_what_the_threshold_functions_emit(
    readings: list[Reading],
) -> None:
    assert run_through_registry(readings, TOPO_LATE) == run_keyed(readings, TOPO_LATE)
