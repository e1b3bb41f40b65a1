"""The chaos suite's comparison: what counts as lost, duplicated and mismatched (no broker:
it runs with the unit tests; the scenarios are marked `chaos`)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support.chaos.compare import Outcome, compare


def _incident(version: int, **changes: Any) -> bytes:
    doc = {
        "incident_id": "inc-1", "version": version, "rule_id": "r", "kind": "threshold",
        "severity": "blue", "subject": "s", "state": "open", "owner_level": "street",
        "owner_area": "a", "last_action": "evidence", "opened_at": "t0", "updated_at": "t1",
        "evidence": {"last_at": f"08:0{version}", "count": version},
    }  # fmt: skip
    doc.update(changes)
    return orjson.dumps(doc)


def _audit(seq: int, prev: str, digest: str) -> bytes:
    return orjson.dumps({"incident_id": "inc-1", "seq": seq, "hash": digest, "prev_hash": prev})


def _expected() -> Outcome:
    expected = Outcome()
    for version in (1, 4):
        expected.add_incident(_incident(version))
    expected.add_audit(_audit(1, "0" * 64, "h1"))
    expected.add_audit(_audit(2, "h1", "h2"))
    return expected


def test_an_identical_replay_is_a_duplicate_only() -> None:
    got = _expected()
    got.add_incident(_incident(4), (0, 9, 1))
    got.add_audit(_audit(2, "h1", "h2"))
    tally = compare(_expected(), got)
    assert tally.clean
    assert +tally.duplicated == {"incidents": 1, "audit": 1}


def test_a_duplicate_that_differs_from_its_first_copy_is_mismatched() -> None:
    got = _expected()
    got.add_incident(_incident(1, severity="yellow"), (0, 9, 1))
    got.add_audit(_audit(2, "h1", "other"))
    tally = compare(_expected(), got)
    assert not tally.clean
    assert +tally.mismatched == {"incidents": 1, "audit": 1}


def test_a_version_the_dry_run_never_published_is_told_with_where_it_sat() -> None:
    got = _expected()
    got.add_incident(_incident(3), (2, 17, 1_700_000_000_000))
    tally = compare(_expected(), got)
    assert tally.mismatched["incidents"] == 1
    story = tally.stories["inc-1"]
    assert "v3 evidence evidence 08:03 #3 at (2, 17, 1700000000000)" in story
    assert "inc-1 as read" in tally.summary()
