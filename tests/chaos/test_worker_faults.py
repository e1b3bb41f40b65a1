"""Faults of the worker: SIGKILLed at random points and restarted; two workers of one
group, one of them killed, the other taking its partitions over; a worker joining while
records flow, then the first one killed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.support.chaos.compare import Outcome
from tests.support.chaos.harness import CATCH_UP, Scenario
from tests.support.chaos.stream import ChaosInput, feed
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.worker import both_ready

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
    """The join hands partitions over while records arrive: both workers recover the
    changelogs they now own (the first one those it kept, which it had written itself),
    and the joiner then takes everything over. A first worker that waited for good in
    that recovery (records Faust fetched and dropped) is what `recovery_watch` ends."""
    sc = Scenario("join mid-stream, 1st killed", kafka_bootstrap, chaos_stream, chaos_expected,
                  tmp_path)  # fmt: skip
    sc.use_clickhouse(ch_server)
    await sc.deploy()
    first, joiner = sc.worker("-a"), sc.worker("-b")
    records = chaos_stream.records
    head, rest = records[: len(records) // 3], records[len(records) // 3 :]
    step = len(rest) // 40 + 1
    slices = [rest[i : i + step] for i in range(0, len(rest), step)]
    async with sc.observer() as observer:
        await feed(kafka_bootstrap, sc.topology, chaos_stream, head)
        first.start()
        try:
            # The first third of the stream makes about 1% of the audit trail.
            await observer.wait_progress(0.005, first.alive, timeout=CATCH_UP)
            joiner.start()
            # Records keep arriving, a slice a second, until both are ready in the new
            # generation: the handover happens mid-stream by construction.
            ready = asyncio.create_task(both_ready(first, joiner, timeout=90.0))
            during = 0
            while slices and not ready.done():
                await feed(kafka_bootstrap, sc.topology, chaos_stream, slices.pop(0))
                during += 1
                await asyncio.wait([ready], timeout=1.0)
            await ready
            for chunk in slices:
                await feed(kafka_bootstrap, sc.topology, chaos_stream, chunk)
            await observer.wait_progress(sc.rng.uniform(0.5, 0.7), joiner.alive, timeout=CATCH_UP)
            first.stop(signal.SIGKILL)  # everything moves to the joiner
            tally, recover = await observer.settle(lambda: joiner.web_port, timeout=CATCH_UP)
        finally:
            code = joiner.stop()
            first.stop()
    sc.finish(tally, recover, f"{during} of 41 slices fed while the joiner joined")
    assert code == 0, f"exit {code}\n{joiner.report()}"
