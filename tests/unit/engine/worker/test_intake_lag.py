"""The intake reports lag only for partitions it still owns: a batch in flight while a
rebalance takes its partition away must not end the worker (aiokafka asserts on
`highwater` of a partition that is not assigned; it did, with exit 70)."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from pipeline.engine.worker.intake import RawIntake
from pipeline.metrics import Metrics

KEPT, REVOKED = TopicPartition("raw", 0), TopicPartition("raw", 1)


class _Consumer:
    """Owns `KEPT` only, as after a rebalance; `highwater` asserts like aiokafka's."""

    def assignment(self) -> set[TopicPartition]:
        return {KEPT}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assignment(), "Partition is not assigned"
        return 100


async def test_lag_is_reported_for_owned_partitions_and_revoked_ones_are_skipped() -> None:
    registry = CollectorRegistry()
    intake = RawIntake(SimpleNamespace(metrics=Metrics.create(registry)))  # type: ignore[arg-type]
    await intake._report_lag(_Consumer(), {KEPT: 40, REVOKED: 7})  # type: ignore[arg-type]  # noqa: SLF001
    lag = "cityops_intake_lag_records"
    assert registry.get_sample_value(lag, {"topic": "raw", "partition": "0"}) == 60
    assert registry.get_sample_value(lag, {"topic": "raw", "partition": "1"}) is None
