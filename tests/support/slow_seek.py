"""`python -m tests.support.slow_seek worker ...`: the cityops CLI with Faust's seek to the
committed offsets taking `CITYOPS_TEST_SEEK_DELAY` seconds longer (default 0.3).

Why: after a rebalance Faust resumes the stream partitions, awaits that seek, then
resumes its flow control, which empties the agents' queues. A record fetched and queued
in between counts as read and is thrown away (upstream faust-streaming issue 596). With
the window widened, the race happens on every restart, so a test can show that the
worker loses nothing.
"""

from __future__ import annotations

import asyncio
import os

from faust.transport.consumer import Consumer

_perform_seek = Consumer.perform_seek


async def _slow_perform_seek(self: Consumer) -> None:
    await _perform_seek(self)
    await asyncio.sleep(float(os.environ.get("CITYOPS_TEST_SEEK_DELAY", "0.3")))


Consumer.perform_seek = _slow_perform_seek  # type: ignore[method-assign]

from pipeline.cli import main  # noqa: E402  # after the patch, as the worker would import it

main()
