"""Faust tables for stage states: one changelog partition per record key, changes sent in
the agent's batch (see `StateTable`)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

import faust
import orjson

from pipeline.engine.stages import record_key_of
from pipeline.kafka.producer import key_partition

__all__ = ["ChangelogRecord", "StateTable", "state_table"]


def state_table(app: faust.App, name: str, partitions: int) -> Any:
    """A Faust table whose changelog entry for key `K` or `K<sep>state` goes to the
    partition Kafka's default partitioner gives the record key `K`: the partition of the
    records that change it, whoever produced them with the default partitioner (our
    normalizer's `KeyPartitioner` does)."""
    table_class = app.conf.Table

    @functools.lru_cache(maxsize=65_536)  # record keys (districts, categories) repeat
    def partition_of(record_key: str) -> int:
        return key_partition(record_key.encode(), partitions)

    class _RecordKeyTable(table_class):  # type: ignore[misc,valid-type]  # faust is untyped
        def partition_for_key(self, key: Any) -> int | None:
            text = key.decode() if isinstance(key, bytes) else str(key)
            return partition_of(record_key_of(text))

    return app.tables.add(
        _RecordKeyTable(
            app, name=name, default=None, key_type=bytes, partitions=partitions,
            beacon=app.tables.beacon,
        )
    )  # fmt: skip


class ChangelogRecord(NamedTuple):
    """One table change bound for its changelog partition (None value: a deletion). A
    tuple: a batch makes one per state it changed."""

    topic: str
    key: bytes
    value: bytes | None
    partition: int


class StateTable(MutableMapping[str, Any]):
    """A Faust table seen through str keys (what the stages use), whose changes are sent
    in the agent's batch.

    Why not `table[key] = value`: Faust sends one changelog record per assignment, with a
    future and its JSON codec each, which dominated the analyze agent once states were
    written per rule. Here a change updates the table's own store and queues the record
    (orjson, the same JSON Faust's codec reads back on recovery); the agent sends the
    queue with its outputs, before its batch is acknowledged.

    Why a change is not stored in the table as well: the stage keeps the decoded state it
    changed, and reads the table only for a key it does not hold (after start-up or a
    rebalance, when Faust's recovery has read the changelog, our records included, up to
    its end). A second copy, as a dict or as JSON, cost ~1.5 KB per sensor (with 100,000
    sensors, 150 MB of peak RSS; JSON bytes even more, measured).
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.pending: list[ChangelogRecord] = []
        self._topic = table.changelog_topic.get_topic_name()

    def __getitem__(self, key: str) -> Any:
        value = self.table.data.get(key.encode())
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        raw = key.encode()
        partition = self.table.partition_for_key(raw)
        # Right-sized copy: orjson (3.12+) returns bytes holding a buffer of at least 4 KB
        # (ijl/orjson#483); a batch that changes 300,000 states (the full city's first
        # minute) held 1.2 GB of them until sent. The copy costs ~0.1 us.
        value_bytes = bytes(memoryview(orjson.dumps(value)))
        self.pending.append(ChangelogRecord(self._topic, raw, value_bytes, partition))

    def __delitem__(self, key: str) -> None:
        raw = key.encode()
        data = self.table.data
        if raw in data:  # seldom: a key recovered from the changelog (a pop raised mostly)
            del data[raw]
        self.pending.append(
            ChangelogRecord(self._topic, raw, None, self.table.partition_for_key(raw))
        )

    def __iter__(self) -> Iterator[str]:
        return (key.decode() if isinstance(key, bytes) else str(key) for key in self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)

    def drain(self) -> list[ChangelogRecord]:
        """The queued changelog records (the queue is emptied)."""
        pending, self.pending = self.pending, []
        return pending
