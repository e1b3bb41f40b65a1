"""The worker's Faust consumer does not hold its stream partitions behind a long fetch
(`pipeline.kafka.recovery_fix`): Faust builds it with `fetch_max_wait_ms=1500`."""

from __future__ import annotations

import faust
import pytest

from pipeline.kafka import recovery_fix


@pytest.mark.asyncio
async def test_the_worker_consumer_waits_at_most_the_short_fetch_wait() -> None:
    recovery_fix.install()
    app = faust.App("recovery-fix-test", broker="kafka://127.0.0.1:1", store="memory://")
    thread = app.consumer._thread  # noqa: SLF001  # the consumer thread Faust would start
    consumer = thread._create_worker_consumer(app.transport)  # noqa: SLF001
    try:
        # Read by `AIOKafkaConsumer.start` to build its fetcher: what each fetch asks.
        wait_ms = consumer._fetch_max_wait_ms  # noqa: SLF001
        assert wait_ms < 1500
        assert wait_ms == recovery_fix.STREAM_FETCH_WAIT_MS
    finally:
        await consumer.stop()  # never started: closes nothing, but releases the client
