"""Which recovering changelog partitions the watch seeks back, and to where
(`pipeline.kafka.recovery_watch`); the worker's own test is
tests/integration/test_recovery_watch.py."""

from __future__ import annotations

from time import monotonic
from types import SimpleNamespace

import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter

from pipeline.kafka.recovery_watch import RecoveryWatch, quiet_partitions, undelivered

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


class _Recovery:
    """What the watch reads of Faust's `Recovery` (a recovery 10 s old, nothing received)."""

    def __init__(self, remaining: dict[TP, int], applied: dict[TP, int | None]) -> None:
        self.in_recovery = True
        self._recovery_started_at = monotonic() - 10.0
        self._active_events_received_at: dict[TP, float] = {}
        self._remaining = remaining
        self.active_offsets = applied

    def active_remaining(self) -> dict[TP, int]:
        return self._remaining


class _Consumer:
    def __init__(self, positions: dict[TP, int], fail: Exception | None = None) -> None:
        self.positions, self.fail = positions, fail
        self.sought: list[dict[TP, int]] = []

    async def position(self, tp: TP) -> int:
        if self.fail is not None:
            raise self.fail
        return self.positions[tp]

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.sought.append(dict(offsets))


def _app(recovery: _Recovery, consumer: _Consumer) -> SimpleNamespace:
    queue = SimpleNamespace(empty=lambda: True)
    return SimpleNamespace(
        tables=SimpleNamespace(recovery=recovery, changelog_queue=queue), consumer=consumer
    )


async def test_the_watch_seeks_a_stalled_partition_back_and_counts_it() -> None:
    consumer = _Consumer({A: 117, B: 41})
    counter = Counter("sought_back", "test", registry=CollectorRegistry())
    watch = RecoveryWatch(_app(_Recovery({A: 116, B: 3}, {A: -1, B: 40}), consumer), counter)
    assert await watch.check() == 1
    assert consumer.sought == [{A: 0}]  # B is at the record it waits for: left alone
    assert counter._value.get() == 1  # noqa: SLF001


async def test_a_failing_look_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = _Consumer({}, fail=IllegalStateError("No current assignment for partition"))
    watch = RecoveryWatch(_app(_Recovery({A: 116}, {A: -1}), consumer))
    assert await watch.check() == 0
    assert "IllegalStateError" in caplog.text and consumer.sought == []
