"""Faust's start-up recovery, fixed so that no record is read and then thrown away.

After a rebalance (every start is one) Faust's `Recovery.on_recovery_completed` resumes
the stream partitions, awaits the seek to the committed offsets (a broker round trip),
then resumes its flow control, which empties the agents' queues, and last resumes the
consumer's flow. But the consumer's flow is already running (recovery resumed it to read
the changelogs), so a record fetched during the seek is queued, counted as read, and then
emptied away: the worker never processes it, and its offset blocks every later commit of
that partition (upstream faust-streaming issue 596, open). Seen here: a restarted worker
processed 26 of the 43 readings it had to replay (3 restarts in ~80); with the window
widened by 0.3 s, 167 to 802 of 10,000 raw readings, every time
(tests/integration/test_recovery_race.py).

The fix stops the consumer's flow before that method runs: nothing is fetched or
delivered until it has sought, emptied the queues and resumed the flow itself.

The seek must also cover a partition nothing was ever committed for. aiokafka's
`seek_to_committed` seeks only to a committed offset above 0, so records of such a
partition fetched while the changelogs were read (the flow was on) and then emptied away
were never read again: a restarted worker sat ready and idle beside a partition whose
records no worker had ever acknowledged (seen twice in full test runs, the poison test's
third start: its readings partition had failed every batch, so it had no committed
offset). Such a partition now goes back to its beginning, which is where the worker's
consumers start one without a committed offset (`auto_offset_reset="earliest"`). It is
sought to that offset, asked of the broker, not reset to "earliest": a reset leaves the
partition without a position until the fetcher resolves it, and Faust's livelock check
reads every assigned partition's position (aiokafka asserts there is one), which crashed
a worker's consumer right after a rebalance (seen once in a full test run, the scale-out
test).

And the stream partitions must not wait behind a fetch already in flight. Faust builds its
consumer with `fetch_max_wait_ms=1500`, and aiokafka sends a node no new fetch while one
is in flight: a fetch sent during recovery for partitions with nothing new (the
changelogs, the incident topics) held the broker for 1.5 s, and the readings partitions
resumed after the seek waited for it. Seen in about one benchmark run in seven: a worker
ready with 100,000 readings waiting sat idle for ~2 s. The worker's consumer waits at most
`STREAM_FETCH_WAIT_MS` instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_on_recovery_completed = Recovery.on_recovery_completed
_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer

#: Longest the broker holds a fetch of the worker's Faust consumer that finds nothing new:
#: the longest a partition that becomes fetchable waits behind such a fetch. An idle
#: worker sends about four fetches a second.
STREAM_FETCH_WAIT_MS = 250


async def _hold_flow_until_sought(self: Any, generation_id: int = 0) -> None:
    # If a new rebalance cut it short, the next recovery resumes the flow again.
    self.app.consumer.stop_flow()
    await _on_recovery_completed(self, generation_id)


async def seek_to_committed_or_beginning(
    consumer: AIOKafkaConsumer, skip_topics: Collection[str] = ()
) -> Mapping[Any, int | None]:
    """Seek every assigned partition to its committed offset, and one that has none (or
    0, which aiokafka does not seek to either) to its beginning, except the partitions of
    `skip_topics` (the changelogs: recovery seeks them itself). Returns the committed
    offsets, as aiokafka's `seek_to_committed` does."""
    committed: Mapping[Any, int | None] = await consumer.seek_to_committed()
    never = [tp for tp, offset in committed.items() if not offset and tp.topic not in skip_topics]
    if never:
        for tp, offset in (await consumer.beginning_offsets(never)).items():
            consumer.seek(tp, offset)  # a position at once (a reset would leave none a while)
    return committed


async def _seek_to_committed(self: Any) -> Mapping[Any, int | None]:
    changelogs = self.consumer.app.tables.changelog_topics
    return await self.call_thread(  # type: ignore[no-any-return]  # faust is untyped
        seek_to_committed_or_beginning, self._ensure_consumer(), changelogs
    )


def _short_fetch_wait_consumer(self: Any, transport: Any) -> AIOKafkaConsumer:
    consumer: AIOKafkaConsumer = _create_worker_consumer(self, transport)
    # Read by `AIOKafkaConsumer.start` when it builds its fetcher (aiokafka 0.14).
    consumer._fetch_max_wait_ms = STREAM_FETCH_WAIT_MS  # noqa: SLF001
    return consumer


def install() -> None:
    """Patch `Recovery.on_recovery_completed` and the consumer thread's
    `seek_to_committed` and worker consumer (idempotent; the worker calls it)."""
    Recovery.on_recovery_completed = _hold_flow_until_sought  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign,assignment]
    AIOKafkaConsumerThread._create_worker_consumer = _short_fetch_wait_consumer  # type: ignore[method-assign]  # noqa: SLF001
