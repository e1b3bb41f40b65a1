"""`cityops audit verify --from-file`: a dry run's audit trail verifies; tampering is named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.audit import audit_app
from tests.unit.cli.test_dryrun import P, dry_run, world

runner = CliRunner()


@pytest.fixture
def trail(tmp_path: Path) -> tuple[Path, list[str]]:
    """The demo topology and the audit lines of the mixed dry run (5 events, 3 incidents)."""
    topology, events = world(tmp_path)
    dry_run(topology, events, tmp_path / "out")
    lines = (tmp_path / "out" / f"{P}incidents.audit.jsonl").read_text().splitlines()
    assert len(lines) == 5
    # Laid out as incident A's first two events, the two others, A's third: a trail keeps
    # each incident's order, and any interleaving of incidents is a valid trail.
    events = [json.loads(line) for line in lines]
    counts = Counter(event["incident_id"] for event in events)
    (a,) = [incident for incident, n in counts.items() if n == 3]
    own = [line for line, event in zip(lines, events, strict=True) if event["incident_id"] == a]
    others = [line for line, event in zip(lines, events, strict=True) if event["incident_id"] != a]
    return topology, [own[0], own[1], *others, own[2]]


def verify_lines(tmp_path: Path, topology: Path, lines: list[str]) -> tuple[int, str]:
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(
        audit_app, ["verify", "--topology", str(topology), "--from-file", str(path)],
        terminal_width=200,
    )  # fmt: skip
    cells = result.output.replace("│", " ").replace("┃", " ")  # table cells -> words
    return result.exit_code, " ".join(cells.split())


def test_an_untouched_trail_verifies(tmp_path: Path, trail: tuple[Path, list[str]]) -> None:
    topology, lines = trail
    code, output = verify_lines(tmp_path, topology, lines)
    assert code == 0, output
    assert "OK" in output and "3 incidents, 5 events, 0 problems" in output


def test_an_altered_event_is_named_with_its_line(
    tmp_path: Path, trail: tuple[Path, list[str]]
) -> None:
    topology, lines = trail
    event = json.loads(lines[1])  # incident A, seq 2 (the upgrade)
    event["reason"] = "yellow -> red"
    altered = [lines[0], json.dumps(event), *lines[2:]]
    code, output = verify_lines(tmp_path, topology, altered)
    assert code == 1
    assert f"line 2 {event['incident_id']} 2 altered" in output
    assert "FAILED" in output and "1 problems" in output


def test_a_dropped_event_is_named(tmp_path: Path, trail: tuple[Path, list[str]]) -> None:
    topology, lines = trail
    incident = json.loads(lines[1])["incident_id"]
    code, output = verify_lines(tmp_path, topology, [lines[0], *lines[2:]])
    assert code == 1
    # seq 2 is missing; the first event after the hole (seq 3) is now on line 4
    assert f"line 4 {incident} 2 dropped seq 2 is missing" in output


def test_reordered_events_are_named(tmp_path: Path, trail: tuple[Path, list[str]]) -> None:
    topology, lines = trail
    incident = json.loads(lines[0])["incident_id"]
    code, output = verify_lines(tmp_path, topology, [lines[1], lines[0], *lines[2:]])
    assert code == 1
    assert f"line 2 {incident} 1 reordered seq 1 arrived after seq 2" in output


def test_a_re_hashed_forgery_breaks_the_next_link(
    tmp_path: Path, trail: tuple[Path, list[str]]
) -> None:
    from pipeline.models import AuditEvent
    from pipeline.rules.audit import event_hash

    topology, lines = trail
    forged = AuditEvent.model_validate_json(lines[1]).model_copy(update={"actor": "mallory"})
    forged = forged.model_copy(update={"hash": event_hash(forged)})
    code, output = verify_lines(
        tmp_path, topology, [lines[0], forged.model_dump_json(), *lines[2:]]
    )
    assert code == 1
    assert f"line 5 {forged.incident_id} 3 broken_link" in output


def test_a_redelivered_line_passes_and_is_counted(
    tmp_path: Path, trail: tuple[Path, list[str]]
) -> None:
    topology, lines = trail
    code, output = verify_lines(tmp_path, topology, [*lines[:2], lines[1], *lines[2:]])
    assert code == 0, output
    assert "3 incidents, 6 events, 0 problems, 1 redeliveries" in output
    path = tmp_path / "audit.jsonl"
    result = runner.invoke(
        audit_app,
        ["verify", "--topology", str(topology), "--from-file", str(path), "--json"],
    )
    doc = json.loads(result.output)
    assert result.exit_code == 0 and (doc["ok"], doc["redeliveries"]) == (True, 1)


def test_a_modified_duplicate_fails(tmp_path: Path, trail: tuple[Path, list[str]]) -> None:
    from pipeline.models import AuditEvent
    from pipeline.rules.audit import event_hash

    topology, lines = trail
    copy = AuditEvent.model_validate_json(lines[1]).model_copy(update={"actor": "mallory"})
    copy = copy.model_copy(update={"hash": event_hash(copy)})
    code, output = verify_lines(
        tmp_path, topology, [*lines[:2], copy.model_dump_json(), *lines[2:]]
    )
    assert code == 1
    assert f"line 3 {copy.incident_id} 2 duplicate" in output
    assert "0 redeliveries" in output


def test_a_line_that_is_not_an_event_is_a_problem(
    tmp_path: Path, trail: tuple[Path, list[str]]
) -> None:
    topology, lines = trail
    code, output = verify_lines(tmp_path, topology, [*lines[:3], '{"seq": "x"}', *lines[3:]])
    assert code == 1
    assert "line 4 malformed" in output


def test_bad_input_exits_2(tmp_path: Path, trail: tuple[Path, list[str]]) -> None:
    topology, _ = trail
    result = runner.invoke(
        audit_app,
        ["verify", "--topology", str(topology), "--from-file", str(tmp_path / "none.jsonl")],
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output
    code, output = verify_lines(tmp_path, topology, ["hello", "[1, 2]"])
    assert code == 2
    assert "no record is an audit event" in output
    result = runner.invoke(
        audit_app,
        ["verify", "--topology", str(tmp_path / "no.yaml"), "--from-file", "x.jsonl"],
    )
    assert result.exit_code == 2
