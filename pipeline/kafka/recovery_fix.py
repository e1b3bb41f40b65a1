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
"""

from __future__ import annotations

from typing import Any

from faust.tables.recovery import Recovery

_on_recovery_completed = Recovery.on_recovery_completed


async def _hold_flow_until_sought(self: Any, generation_id: int = 0) -> None:
    # If a new rebalance cut it short, the next recovery resumes the flow again.
    self.app.consumer.stop_flow()
    await _on_recovery_completed(self, generation_id)


def install() -> None:
    """Patch `Recovery.on_recovery_completed` (idempotent; the worker calls it)."""
    Recovery.on_recovery_completed = _hold_flow_until_sought  # type: ignore[method-assign]
