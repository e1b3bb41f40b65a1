"""A stateful agent's batch is run in passes of bounded input size, in order."""

from __future__ import annotations

from pipeline.engine.emit import Record
from pipeline.engine.worker.agents import passes


def record(size: int, offset: int) -> Record:
    return Record("t", b"k", b"x" * size, (), 0, offset)


def test_passes_keep_order_and_bound_their_bytes() -> None:
    records = [record(size, i) for i, size in enumerate([400, 400, 300, 900, 1500, 100, 100])]
    runs = passes(records, 1000)
    assert [[r.offset for r in run] for run in runs] == [[0, 1], [2], [3], [4], [5, 6]]
    assert [r for run in runs for r in run] == records  # nothing lost, nothing repeated
    # a record above the bound is a pass of its own; every other pass stays within it
    assert all(sum(len(r.value) for r in run) <= 1000 for run in runs if len(run) > 1)


def test_a_small_batch_is_one_pass_and_an_empty_one_none() -> None:
    records = [record(10, i) for i in range(50)]
    assert passes(records, 1_000_000) == [records]
    assert passes([], 1000) == []
