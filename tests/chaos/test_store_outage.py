"""The store (a ClickHouse server, here its HTTP interface in front of chDB) stops for
60 s mid-stream: the worker backs off and retries, and nothing is lost or counted twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.chaos.compare import Outcome
from tests.support.chaos.harness import CATCH_UP, Scenario
from tests.support.chaos.stream import ChaosInput, feed
from tests.support.clickhouse_http import ClickHouseHTTPServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

OUTAGE = 60.0


async def test_store_down_for_60_s(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path,
    ch_server: ClickHouseHTTPServer,
) -> None:  # fmt: skip
    sc = Scenario("store down 60 s", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path)
    sc.use_clickhouse(ch_server)
    await sc.deploy()
    worker = sc.worker()
    async with sc.observer() as observer:
        await feed(kafka_bootstrap, sc.topology, chaos_stream)
        worker.start()
        try:
            await observer.wait_progress(sc.rng.uniform(0.2, 0.5), worker.alive, timeout=CATCH_UP)
            ch_server.stop()  # connection refused
            try:
                await asyncio.sleep(OUTAGE)
                assert worker.alive(), worker.report()
            finally:
                ch_server.start()
            tally, recover = await observer.settle(lambda: worker.web_port, timeout=CATCH_UP)
        finally:
            code = worker.stop()
    sc.finish(tally, recover, "ClickHouse HTTP refused 60 s at a seeded point")
    assert code == 0, f"exit {code}\n{worker.report()}"
