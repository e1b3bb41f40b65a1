"""Which recovering changelog partitions the watch seeks back, and to where
(`pipeline.kafka.recovery_watch`); the worker's own test is
tests/integration/test_recovery_watch.py."""

from __future__ import annotations

from faust.types import TP

from pipeline.kafka.recovery_watch import quiet_partitions, undelivered

A, B, C = TP("windows-changelog", 0), TP("windows-changelog", 1), TP("detector-changelog", 0)


def test_a_position_past_the_next_record_to_apply_is_sought_back_to_it() -> None:
    remaining = {A: 116, B: 10}
    applied = {A: -1, B: 40}
    positions = {A: 117, B: 51}
    assert list(undelivered(remaining, applied, positions)) == [(A, 117, 0), (B, 51, 41)]


def test_a_partition_at_its_next_record_or_done_or_unknown_is_left_alone() -> None:
    remaining = {A: 116, B: 0, C: 5}
    applied = {A: None, B: 40, C: 9}
    # A: at the record it waits for (still fetching); B: nothing left, even though the
    # position moved on; C: no position known.
    positions = {A: 0, B: 60, C: None}
    assert list(undelivered(remaining, applied, positions)) == []


def test_quiet_means_nothing_delivered_for_the_whole_quiet_time() -> None:
    remaining = {A: 3, B: 3, C: 0}
    started, now = 100.0, 110.0
    received = {B: 108.0}  # B delivered 2 s ago; A never delivered since the start
    assert quiet_partitions(remaining, received, started, now, quiet=6.0) == [A]
    assert quiet_partitions(remaining, received, started, now, quiet=11.0) == []
    # C has nothing left: never quiet, whatever its silence.
    assert quiet_partitions(remaining, {}, started, now + 100, quiet=6.0) == [A, B]
