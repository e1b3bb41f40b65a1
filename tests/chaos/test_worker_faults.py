"""Faults of the worker: SIGKILLed at random points and restarted; two workers of one
group, one of them killed, the other taking its partitions over; a worker joining while
the stream flows (its partitions handed over mid-stream), then the first one killed."""

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


async def test_a_worker_joins_mid_stream_then_the_first_is_killed(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path,
    ch_server: ClickHouseHTTPServer,
) -> None:  # fmt: skip
    sc = Scenario(
        "worker joins mid-stream", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path
    )
    sc.use_clickhouse(ch_server)
    await sc.deploy()
    first, joiner = sc.worker("-a"), sc.worker("-b")
    async with sc.observer() as observer:
        first.start()
        try:
            await both_ready(first)
            # The first owns everything while most of the stream arrives; the second joins
            # as it is read (a rebalance while records flow: half the partitions move).
            split = len(chaos_stream.records) * 3 // 5
            feeding = asyncio.ensure_future(
                feed(kafka_bootstrap, sc.topology, chaos_stream, chaos_stream.records[:split])
            )
            join_at = sc.rng.uniform(0.02, 0.1)
            await observer.wait_progress(join_at, first.alive, timeout=CATCH_UP)
            joiner.start()
            await feeding
            await both_ready(first, joiner)
            await feed(kafka_bootstrap, sc.topology, chaos_stream, chaos_stream.records[split:])
            low = observer.audit_progress() + 0.05
            kill_at = sc.rng.uniform(low, max(low, 0.85))
            await observer.wait_progress(kill_at, joiner.alive, timeout=CATCH_UP)
            first.stop(signal.SIGKILL)
            tally, recover = await observer.settle(lambda: joiner.web_port, timeout=CATCH_UP)
        finally:
            code = joiner.stop()
            first.stop()
    note = f"joined at {join_at:.0%}, the first killed at {kill_at:.0%} of the audit"
    sc.finish(tally, recover, note)
    assert code == 0, f"exit {code}\n{joiner.report()}"


async def both_ready(*workers: WorkerProcess, timeout: float = 60.0) -> None:
    """Until every worker has recovered in the same (latest) generation of the Faust group."""
    deadline = time.monotonic() + timeout
    while True:
        generations = {w.ready_generation() for w in workers}
        if len(generations) == 1 and None not in generations:
            return
        assert time.monotonic() < deadline, "".join(w.report() for w in workers)
        await asyncio.sleep(0.5)
