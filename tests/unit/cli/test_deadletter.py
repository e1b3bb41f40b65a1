"""Which dead letters a replay picks, and the times its options accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from pipeline.cli.deadletter import Letter, _moment, select
from pipeline.models import DeadLetter, RejectReason

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _letter(offset: int, reason: RejectReason, *, ago: timedelta = timedelta(minutes=5),
            topic: str = "p.sensors.raw", sha: str | None = None) -> Letter:  # fmt: skip
    letter = DeadLetter(
        reason=reason, detail="x", source_topic=topic, partition=0, offset=offset,
        original=b"{}", original_size=2, original_sha256=sha, received_at=NOW - ago,
    )  # fmt: skip
    return Letter(0, offset, None, letter)


def test_select_keeps_the_reason_and_window_and_explains_what_it_skips() -> None:
    letters = [
        _letter(1, RejectReason.unknown_sensor),
        _letter(2, RejectReason.invalid_json),
        _letter(3, RejectReason.unknown_sensor, ago=timedelta(hours=3)),
        _letter(4, RejectReason.unknown_sensor, sha="ab" * 32),
        _letter(5, RejectReason.unknown_sensor, topic="elsewhere"),
        _letter(6, RejectReason.unknown_sensor, ago=timedelta(0)),  # `until` is exclusive
    ]
    chosen = select(letters, reasons={"unknown_sensor"}, since=NOW - timedelta(hours=1),
                    until=NOW, topics={"p.sensors.raw"})  # fmt: skip
    assert [item.offset for item in chosen.replay] == [1]
    assert [(item.offset, why.split(" ")[0]) for item, why in chosen.skipped] == [
        (4, "original"), (5, "source"),
    ]  # fmt: skip
    summary = chosen.summary(dry_run=True, replayed=0)
    assert (summary["matched"], summary["to_replay"], summary["by_topic"]) == (
        3, 1, {"p.sensors.raw": 1},
    )  # fmt: skip


def test_times_are_durations_ago_or_zoned_iso() -> None:
    assert _moment(None, NOW, "--until") == NOW
    assert _moment("2h", NOW, "--since") == NOW - timedelta(hours=2)
    assert _moment("2024-05-01T18:00:00+08:00", NOW, "--since") == NOW - timedelta(hours=2)
    with pytest.raises(typer.Exit):
        _moment("2024-05-01T10:00:00", NOW, "--since")
    with pytest.raises(typer.Exit):
        _moment("yesterday", NOW, "--since")
