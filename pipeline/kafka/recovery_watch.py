"""A watch on Faust's table recovery: a changelog partition whose records were fetched but
never delivered is sought back, so that a worker cannot wait for them forever.

Why: Faust's recovery seeks each changelog partition once, then waits until it has applied
every record up to the partition's end. But its consumer throws away the rest of a fetched
batch in three places (`Consumer.getmany` stops iterating when the flow stops or the
group's generation changes, and skips a partition paused meanwhile), after aiokafka has
already moved the position past those records. For a stream partition the next seek to
the committed offset reads them again; for a changelog partition nothing does until the
next rebalance. Nobody else writes to a worker's own changelogs while it recovers them,
so no later record arrives either: the worker logs "No event received for active tp"
every 5 s and never becomes ready. Seen once in six full chaos sessions, after a second
worker joined mid-stream (the first worker's kept changelog partitions, read from the
start up to offset 116, delivered nothing).

The watch looks every `CHECK_SECONDS` while a recovery runs. A partition with records
left to apply, from which nothing was delivered for `QUIET_SECONDS` while the changelog
queue was empty, and whose consumer position is past the next offset to apply, is sought
back to that offset. Re-reading is harmless: recovery skips an offset it has applied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from time import monotonic
from typing import Any

from faust.types import TP
from mode import Service
from prometheus_client import Counter

log = logging.getLogger(__name__)

#: How often the watch looks at a running recovery.
CHECK_SECONDS = 2.0
#: How long a partition with records left delivers nothing before its position is checked.
QUIET_SECONDS = 6.0


def undelivered(
    remaining: Mapping[TP, int],
    applied: Mapping[TP, int | None],
    positions: Mapping[TP, int | None],
) -> Iterator[tuple[TP, int, int]]:
    """The partitions whose position is past records never applied: (partition, position,
    the next offset to apply). `remaining` is the records left per partition, `applied`
    the last offset applied (None or -1: none)."""
    for tp, left in remaining.items():
        if left <= 0:
            continue
        last = applied.get(tp)
        expected = (-1 if last is None else last) + 1
        position = positions.get(tp)
        if position is not None and position > expected:
            yield tp, position, expected


def quiet_partitions(
    remaining: Mapping[TP, int],
    received_at: Mapping[TP, float],
    started_at: float,
    now: float,
    quiet: float = QUIET_SECONDS,
) -> list[TP]:
    """The partitions with records left from which nothing was delivered for `quiet`
    seconds (counted from the recovery's start for one that never delivered)."""
    return [
        tp
        for tp, left in remaining.items()
        if left > 0 and now - received_at.get(tp, started_at) >= quiet
    ]


class RecoveryWatch(Service):
    """Seeks back a recovering changelog partition whose records were dropped unseen."""

    def __init__(
        self, app: Any, sought_back: Counter | None = None, quiet: float = QUIET_SECONDS,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        """`sought_back` counts the partitions sought back (a Prometheus counter)."""
        super().__init__(**kwargs)
        self.app = app
        self.sought_back = sought_back
        self.quiet = quiet

    @Service.timer(CHECK_SECONDS)
    async def _every_few_seconds(self) -> None:
        await self.check()

    async def check(self) -> int:
        """`look`, logging rather than raising what went wrong: a watch must not end the
        worker. (A rebalance can take a partition away between the look and the seek:
        aiokafka raises IllegalStateError; the next look starts afresh.)"""
        try:
            return await self.look()
        except Exception as exc:  # noqa: BLE001
            log.warning("recovery watch: %s: %s", type(exc).__name__, exc)
            return 0

    async def look(self) -> int:
        """One look at a running recovery; how many partitions were sought back."""
        recovery = self.app.tables.recovery
        started_at = recovery._recovery_started_at  # noqa: SLF001  # faust has no accessor
        if not recovery.in_recovery or started_at is None:
            return 0
        if not self.app.tables.changelog_queue.empty():
            return 0  # delivered records wait to be applied
        remaining = recovery.active_remaining()
        quiet = quiet_partitions(
            remaining,
            recovery._active_events_received_at,  # noqa: SLF001
            started_at,
            monotonic(),
            self.quiet,
        )
        if not quiet:
            return 0
        consumer = self.app.consumer
        positions = {tp: await consumer.position(tp) for tp in quiet}
        back = {}
        for tp, position, expected in undelivered(remaining, recovery.active_offsets, positions):
            log.warning(
                "Recovery of %s:%d stalled: the consumer is at offset %d but the next "
                "record to apply is %d (records fetched and dropped by Faust); seeking back",
                tp.topic, tp.partition, position, expected,
            )  # fmt: skip
            back[tp] = expected
        if not back or not recovery.in_recovery:
            return 0
        await consumer.seek_wait(back)
        if self.sought_back is not None:
            self.sought_back.inc(len(back))
        return len(back)
