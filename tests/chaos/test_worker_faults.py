"""Faults of the worker: SIGKILLed at random points and restarted; two workers of one
group, one of them killed, the other taking its partitions over."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.support.chaos.compare import Outcome
from tests.support.chaos.harness import CATCH_UP, Scenario
from tests.support.chaos.stream import ChaosInput, feed
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


async def test_worker_sigkilled_three_times_at_random_points(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path
) -> None:
    sc = Scenario("worker SIGKILL x3", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path)
    await sc.deploy()
    # Seeded points of the run, measured on a public output (share of the audit trail).
    points = sorted(sc.rng.uniform(0.1, 0.9) for _ in range(3))
    worker = sc.worker()
    async with sc.observer() as observer:
        await feed(kafka_bootstrap, sc.topology, chaos_stream)
        worker.start()
        try:
            for point in points:
                await observer.wait_progress(point, worker.alive, timeout=CATCH_UP)
                worker.stop(signal.SIGKILL)
                worker.start()
            tally, recover = await observer.settle(lambda: worker.web_port, timeout=CATCH_UP)
        finally:
            code = worker.stop()
    sc.finish(
        tally, recover, "killed at " + ", ".join(f"{p:.0%}" for p in points) + " of the audit"
    )
    assert code == 0, f"exit {code}\n{worker.report()}"


async def test_two_workers_one_killed_the_other_takes_over(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path,
    ch_server: ClickHouseHTTPServer,
) -> None:  # fmt: skip
    sc = Scenario("2 workers, 1 killed", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path)
    sc.use_clickhouse(ch_server)  # several workers share a ClickHouse server, not chDB
    await sc.deploy()
    survivor, victim = sc.worker("-a"), sc.worker("-b")
    async with sc.observer() as observer:
        survivor.start()
        victim.start()
        try:
            # Both own partitions before the stream arrives: both ready in one generation
            # of the Faust group (the raw intake's group assigns first, and separately).
            await both_ready(survivor, victim)
            await feed(kafka_bootstrap, sc.topology, chaos_stream)
            await observer.wait_progress(sc.rng.uniform(0.2, 0.6), survivor.alive, timeout=CATCH_UP)
            victim.stop(signal.SIGKILL)  # its partitions move to the survivor (rebalance)
            tally, recover = await observer.settle(lambda: survivor.web_port, timeout=CATCH_UP)
        finally:
            code = survivor.stop()
            victim.stop()
    sc.finish(tally, recover, "one ClickHouse store (HTTP) shared by both")
    assert code == 0, f"exit {code}\n{survivor.report()}"


async def both_ready(*workers: WorkerProcess, timeout: float = 60.0) -> None:
    """Until every worker has recovered in the same (latest) generation of the Faust group."""
    deadline = time.monotonic() + timeout
    while True:
        generations = {w.ready_generation() for w in workers}
        if len(generations) == 1 and None not in generations:
            return
        assert time.monotonic() < deadline, "".join(w.report() for w in workers)
        await asyncio.sleep(0.5)
