"""The worker's collector settings: start-up objects frozen, cycles collected less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.engine.worker.app import COLLECTOR_THRESHOLDS, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_passes_are_rarer() -> None:
    start_up = [object() for _ in range(10)], {"registry": [1, 2, 3]}
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    # Objects alive at start-up are no longer in any generation a collection walks.
    assert not any(start_up is obj for obj in gc.get_objects())
    assert COLLECTOR_THRESHOLDS[0] > 700  # rarer than Python's default young pass
