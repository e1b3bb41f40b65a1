"""Faults of the worker: SIGKILLed at random points and restarted; two workers of one
group, one of them killed, the other taking its partitions over."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.chaos.compare import Outcome
from tests.support.chaos.harness import CATCH_UP, Scenario
from tests.support.chaos.stream import ChaosInput, feed

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


async def test_worker_sigkilled_three_times_at_random_points(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path
) -> None:
    sc = Scenario("worker-kill-x3", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path)
    await sc.deploy()
    points = sorted(sc.rng.uniform(0.1, 0.9) for _ in range(3))
    worker = sc.worker()
    async with sc.observer() as observer:
        records_in = await feed(kafka_bootstrap, sc.topology, chaos_stream)
        worker.start()
        try:
            for point in points:
                await observer.wait_progress(point, worker.alive, timeout=CATCH_UP)
                worker.stop(signal.SIGKILL)
                worker.start()
            restarted = time.monotonic()
            tally, recover = await observer.settle(lambda: worker.web_port, timeout=CATCH_UP)
        finally:
            code = worker.stop()
    assert code == 0, f"exit {code}\n{worker.log()[-3000:]}"
    note = "kills at " + ", ".join(f"{p:.0%}" for p in points) + " of the audit"
    sc.finish(tally, recover, note)
    assert records_in == len(chaos_stream.records)
    del restarted
