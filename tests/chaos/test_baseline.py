"""No fault: one worker over the stream gives exactly the dry run's outputs (the
reference row of the report, and the proof the comparison itself holds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos.compare import Outcome
from tests.support.chaos.harness import CATCH_UP, Scenario
from tests.support.chaos.stream import ChaosInput, feed

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


async def test_no_fault_equals_the_dry_run(
    kafka_bootstrap: str, chaos_stream: ChaosInput, chaos_expected: Outcome, tmp_path: Path
) -> None:
    sc = Scenario("none", kafka_bootstrap, chaos_stream, chaos_expected, tmp_path)
    await sc.deploy()
    worker = sc.worker()
    async with sc.observer() as observer:
        await feed(kafka_bootstrap, sc.topology, chaos_stream)
        worker.start()
        try:
            tally, recover = await observer.settle(lambda: worker.web_port, timeout=CATCH_UP)
        finally:
            code = worker.stop()
    assert code == 0, f"exit {code}\n{worker.report()}"
    sc.finish(tally, recover, "time = from the start to caught up")
