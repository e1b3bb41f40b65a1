"""What a run produced, in the public outputs only, and how it compares with the dry run.

Three families, each counted as lost, duplicated and mismatched:
- incidents: every version of every incident on the city topic (each change is one
  record), and each incident's final state;
- the audit chain: every entry (incident id, seq), its hash, and the chain's links;
- in both, a duplicate must be byte-identical to the first copy (the redelivery contract):
  a copy that differs is mismatched, not merely duplicated;
- aggregates: per (level, area, metric, window) the count, sum, min and max the store
  serves (a store keeps one row per key, so it cannot show duplicates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pipeline.engine.local import DryRunResult
from pipeline.models import AggregateRow
from pipeline.topology import Topology

#: The fields of an incident's final state the comparison checks (the wall-clock free
#: ones: SLA deadlines and update times come from event time in both).
FINAL_FIELDS = (
    "rule_id", "kind", "severity", "subject", "state", "owner_level", "owner_area",
    "version", "last_action", "opened_at", "updated_at", "evidence",
)  # fmt: skip

AggKey = tuple[str, str, str, str]  # level, area, metric, window start (ISO)
AggValue = tuple[int, float, float, float]  # count, sum, min, max
Where = tuple[int, int, int]  # partition, offset, broker timestamp (ms) of a record


@dataclass
class Outcome:
    """The public outputs of one run (or of the dry run)."""

    versions: Counter[tuple[str, int]] = field(default_factory=Counter)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: Counter[tuple[str, int]] = field(default_factory=Counter)
    audit_hash: dict[tuple[str, int], str] = field(default_factory=dict)
    audit_prev: dict[tuple[str, int], str] = field(default_factory=dict)
    aggregates: dict[AggKey, AggValue] = field(default_factory=dict)
    first: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    """(family, incident id, version or seq) -> the first copy's bytes."""
    conflicts: Counter[str] = field(default_factory=Counter)
    """Per family, copies that differ from the first copy of their key."""
    published: dict[str, list[tuple[Where | None, dict[str, Any]]]] = field(default_factory=dict)
    """Incident id -> its records in the order read, with where each sits (the story of an
    incident that went wrong)."""

    def _copy(self, family: str, key: tuple[str, int], value: bytes) -> None:
        known = self.first.setdefault((family, *key), value)
        if known != value:
            self.conflicts[family] += 1

    def add_incident(self, value: bytes, where: Where | None = None) -> None:
        doc = orjson.loads(value)
        key = (doc["incident_id"], doc["version"])
        self.versions[key] += 1
        self._copy("incidents", key, value)
        self.published.setdefault(doc["incident_id"], []).append((where, doc))
        known = self.final.get(doc["incident_id"])
        if known is None or doc["version"] >= known["version"]:
            self.final[doc["incident_id"]] = {k: doc.get(k) for k in FINAL_FIELDS}

    def add_audit(self, value: bytes) -> None:
        doc = orjson.loads(value)
        key = (doc["incident_id"], doc["seq"])
        self.audit[key] += 1
        self._copy("audit", key, value)
        self.audit_hash.setdefault(key, doc["hash"])
        self.audit_prev.setdefault(key, doc["prev_hash"])

    def add_rows(self, rows: Iterable[AggregateRow], until: datetime) -> None:
        for row in rows:
            if row.window_start < until and row.level in ("street", "district"):
                key = (str(row.level), row.area_code, row.metric, row.window_start.isoformat())
                self.aggregates[key] = (row.count, row.sum, row.min, row.max)

    def broken_links(self) -> int:
        """Audit entries whose prev_hash is not the hash of the entry before them."""
        broken = 0
        for (incident, seq), prev in self.audit_prev.items():
            before = self.audit_hash.get((incident, seq - 1))
            if (seq == 1 and prev != "0" * 64) or (
                seq > 1 and before is not None and prev != before
            ):
                broken += 1
        return broken

    def story(self, incident_id: str, limit: int = 40) -> str:
        """An incident's records as read: version, action, evidence time and count, and
        where each sat (partition, offset, broker time), to tell which worker wrote what."""
        lines = []
        for where, doc in self.published.get(incident_id, [])[:limit]:
            evidence = doc.get("evidence") or {}
            lines.append(
                f"  v{doc['version']} {doc.get('last_action')} evidence "
                f"{evidence.get('last_at')} #{evidence.get('count')} at {where}"
            )
        return "\n".join(lines)


def dry_run_outcome(result: DryRunResult, topology: Topology, until: datetime) -> Outcome:
    """The dry run's public outputs, as `Outcome`."""
    expected = Outcome()
    for value in result.outputs[topology.topics.name("incidents_city")]:
        expected.add_incident(value)
    for value in result.outputs[topology.topics.name("audit")]:
        expected.add_audit(value)
    expected.add_rows(result.rows, until)
    return expected


@dataclass
class Tally:
    """Lost, duplicated and mismatched records per family, with examples."""

    lost: Counter[str] = field(default_factory=Counter)
    duplicated: Counter[str] = field(default_factory=Counter)
    mismatched: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    stories: dict[str, str] = field(default_factory=dict)
    """Incident id -> its records as read, for a few incidents that went wrong."""

    def note(self, text: str) -> None:
        if len(self.examples) < 12:
            self.examples.append(text)

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing mismatched (duplicates are reported, not failed)."""
        return not sum(self.lost.values()) and not sum(self.mismatched.values())

    def caught_up(self) -> bool:
        return not sum(self.lost.values())

    def summary(self) -> str:
        def part(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if v) or "0"

        return (
            f"lost: {part(self.lost)}; duplicated: {part(self.duplicated)}; "
            f"mismatched: {part(self.mismatched)}\n"
            + "\n".join(self.examples)
            + "".join(f"\nincident {i} as read:\n{text}" for i, text in self.stories.items())
        )


def compare(expected: Outcome, got: Outcome) -> Tally:
    """Count what `got` lost, duplicated or changed relative to `expected`."""
    tally = Tally()
    wrong = _counted(tally, "incidents", expected.versions, got.versions)
    for incident, want in expected.final.items():
        have = got.final.get(incident)
        if have is not None and have != want:
            tally.mismatched["incidents"] += 1
            diff = {k: (want[k], have.get(k)) for k in want if want[k] != have.get(k)}
            tally.note(f"incident {incident} final state differs: {diff}")
            wrong.append(incident)
    for incident in wrong[:2]:
        tally.stories[incident] = got.story(incident)
    _counted(tally, "audit", expected.audit, got.audit)
    for key, digest in expected.audit_hash.items():
        if key in got.audit_hash and got.audit_hash[key] != digest:
            tally.mismatched["audit"] += 1
            tally.note(f"audit {key} hash differs")
    tally.mismatched["audit"] += got.broken_links()
    for family, conflicts in got.conflicts.items():
        tally.mismatched[family] += conflicts
        tally.note(f"{family}: {conflicts} duplicate(s) differ from their first copy")
    for key, want_row in expected.aggregates.items():
        have_row = got.aggregates.get(key)
        if have_row is None:
            tally.lost["aggregates"] += 1
            tally.note(f"aggregate {key} missing")
        elif have_row != want_row:
            tally.mismatched["aggregates"] += 1
            tally.note(f"aggregate {key}: want {want_row}, got {have_row}")
    extra = set(got.aggregates) - set(expected.aggregates)
    tally.mismatched["aggregates"] += len(extra)
    for key in sorted(extra)[:3]:
        tally.note(f"aggregate {key} is not in the dry run")
    return tally


def _counted(
    tally: Tally, family: str, expected: Counter[tuple[str, int]], got: Counter[tuple[str, int]]
) -> list[str]:
    """Count lost, duplicated and extra keys of one family; return the incidents with an
    extra key."""
    for key, want in expected.items():
        have = got.get(key, 0)
        if have == 0:
            tally.lost[family] += 1
            tally.note(f"{family} {key} missing")
        elif have > want:
            tally.duplicated[family] += have - want
    extra = set(got) - set(expected)
    tally.mismatched[family] += len(extra)
    for key in sorted(extra)[:3]:
        tally.note(f"{family} {key} is not in the dry run")
    return sorted({incident for incident, _ in extra})
