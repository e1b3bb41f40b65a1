"""`python -m tests.support.poison_stage worker ...`: the cityops CLI with a defect planted
in the aggregate stage: a reading whose value is exactly `CITYOPS_TEST_POISON_VALUE`
(default 666.25) makes it raise, as a bug tripped by one record would.

Why: the isolation of a poison record (found across restarts, dead-lettered alone, the
rest processed) can only be shown with a stage that fails on one record.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from pipeline.engine.stages.aggregate import AggregateStage

_POISON = float(os.environ.get("CITYOPS_TEST_POISON_VALUE", "666.25"))
_on_readings = AggregateStage.on_readings


def _failing_on_readings(
    self: AggregateStage, key: str, batch: Any, where: Sequence[Any], rows: Any = None
) -> Any:
    if _POISON in batch.value:
        msg = f"planted defect: a reading of {_POISON}"
        raise RuntimeError(msg)
    return _on_readings(self, key, batch, where, rows)


AggregateStage.on_readings = _failing_on_readings  # type: ignore[method-assign]

from pipeline.cli import main  # noqa: E402  # after the patch, as the worker would import it

main()
