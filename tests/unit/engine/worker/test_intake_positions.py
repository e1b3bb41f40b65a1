"""The intake learns where newly assigned raw partitions start; one revoked while its
position is awaited is skipped, not the end of the worker (aiokafka raises
`IllegalStateError` then; it ended a worker with status 70 in a two-worker bench run)."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition

from pipeline.engine.worker.intake import RawIntake

KNOWN, KEPT, REVOKED = TopicPartition("raw", 0), TopicPartition("raw", 1), TopicPartition("raw", 2)


class _Consumer:
    """Assigned all three; `REVOKED` is taken away while its position is awaited, and
    aiokafka's `position` then raises as here."""

    def __init__(self) -> None:
        self.asked: list[TopicPartition] = []

    def assignment(self) -> set[TopicPartition]:
        return {KNOWN, KEPT, REVOKED}

    async def position(self, tp: TopicPartition) -> int:
        self.asked.append(tp)
        if tp == REVOKED:
            msg = f"Partition {tp} is not assigned"
            raise IllegalStateError(msg)
        return 40


async def test_a_partition_revoked_while_its_position_is_asked_is_skipped() -> None:
    intake = RawIntake(SimpleNamespace())  # type: ignore[arg-type]
    intake._next[KNOWN] = 7  # noqa: SLF001
    consumer = _Consumer()
    await intake._learn_positions(consumer)  # type: ignore[arg-type]  # noqa: SLF001
    assert intake._next == {KNOWN: 7, KEPT: 40}  # noqa: SLF001
    assert sorted(consumer.asked) == [KEPT, REVOKED]  # a known partition is not asked again
