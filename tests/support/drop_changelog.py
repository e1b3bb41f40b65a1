"""`python -m tests.support.drop_changelog worker ...`: the cityops CLI with Faust's
consumer dropping the rest of the first fetched batch that holds a changelog record
during a recovery, as `Consumer.getmany` does when the flow stops or the group's
generation changes mid-batch.

Why: aiokafka has already moved the partition's position past those records, and
recovery seeks a changelog partition only once, so it waits for records that will never
come (`pipeline.kafka.recovery_watch`). The drop is logged ("dropped changelog records")
so that a test can tell the fault happened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer

_getmany = Consumer.getmany
_dropped: list[int] = []
log = logging.getLogger("tests.support.drop_changelog")


async def _dropping_getmany(self: Consumer, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    changelogs = self.app.tables.changelog_topics
    async for tp, message in _getmany(self, timeout):
        if not _dropped and self.app.in_recovery and tp.topic in changelogs:
            _dropped.append(message.offset)
            log.warning("dropped changelog records from %s:%d offset %d on", tp.topic,
                        tp.partition, message.offset)  # fmt: skip
            return  # the rest of this batch is never delivered, as after Faust's `break`
        yield tp, message


Consumer.getmany = _dropping_getmany  # type: ignore[method-assign,assignment]

from pipeline.cli import main  # noqa: E402  # after the patch, as the worker would import it

main()
