"""Cached states are dropped (after a rebalance, after a recovery) only between batches: a
batch between its run and its persist holds changes that only the cache has."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, cast

from pipeline.engine.routing import GROUPS, Pipeline
from pipeline.engine.worker.agents import forget_between_batches
from pipeline.engine.worker.wiring import Wiring
from pipeline.topology import load_topology
from tests.support.paths import DEMO


async def test_a_batch_in_flight_keeps_its_changes_and_the_cache_is_dropped_after() -> None:
    tables: defaultdict[str, dict[str, Any]] = defaultdict(dict)
    pipeline = Pipeline(load_topology(DEMO), tables.__getitem__)
    w = cast(Wiring, SimpleNamespace(pipeline=pipeline, locks={g: asyncio.Lock() for g in GROUPS}))
    progress = pipeline.detect.progress

    async with w.locks["analyze"]:  # a batch: changed, not yet persisted
        progress.get("district-1", dict)["raw:0"] = 7
        forgetting = asyncio.ensure_future(forget_between_batches(w))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not forgetting.done()  # it waits for the batch
        pipeline.persist("analyze")
    await forgetting

    assert tables["progress"]["district-1"]["state"] == {"raw:0": 7}  # nothing was lost
    tables["progress"]["district-1"] = {"state": {"raw:0": 9}, "offsets": {}}
    assert progress.peek("district-1") == {"raw:0": 9}  # the cache was dropped: re-read
