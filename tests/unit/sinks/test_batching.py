"""The batcher against the in-memory store: size/time flushes, backoff, safe offsets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.models import AggregateRow, AreaLevel, StoreRow, row_model, store_row
from pipeline.sinks.base import EncodingStore, StoreError, dedup_token_for, payload_token
from pipeline.sinks.batching import Backoff, Batcher
from pipeline.sinks.clickhouse_sql import rows_to_rowbinary
from pipeline.sinks.memory import MemoryStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TP0, TP1 = ("readings", 0), ("readings", 1)


def rows(n: int, start: int = 0) -> list[StoreRow]:
    return [
        store_row(
            AggregateRow(
                window_start=T0 + timedelta(minutes=i),
                window_end=T0 + timedelta(minutes=i + 1),
                level=AreaLevel.street,
                area_code="s1",
                metric="pm25",
                count=1,
                sum=float(i),
                min=float(i),
                max=float(i),
                mean=float(i),
                breaches=0,
            )
        )
        for i in range(start, start + n)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.init()
    return s


def test_flushes_when_full_and_then_offsets_are_committable(store: MemoryStore) -> None:
    b = Batcher(store, max_rows=3, max_age=10, clock=Clock())
    out = b.add(rows(2), offsets={TP0: 10})
    assert (out.written_rows, out.committable, store.stored_rows) == (0, {}, 0)
    out = b.add(rows(2, start=2), offsets={TP0: 20, TP1: 5})
    # the first 3 rows filled a batch and were written with the first add's offsets;
    # the second add's offsets ride with the row still pending
    assert out.written_rows == 3
    assert out.committable == {TP0: 10}
    assert b.pending_rows == 1
    out = b.flush()
    assert out.committable == {TP0: 20, TP1: 5}
    assert [len(r) for _, r in store.inserts] == [3, 1]


def test_flushes_by_age_on_poll(store: MemoryStore) -> None:
    clock = Clock()
    b = Batcher(store, max_rows=100, max_age=1.0, clock=clock)
    b.add(rows(5), offsets={TP0: 42})
    clock.now = 0.99
    assert b.poll().written_rows == 0
    clock.now = 1.0
    out = b.poll()
    assert (out.written_rows, out.committable) == (5, {TP0: 42})
    assert b.committable == {TP0: 42}


def test_offsets_with_nothing_pending_are_safe_at_once(store: MemoryStore) -> None:
    b = Batcher(store, max_rows=10, clock=Clock())
    assert b.add([], offsets={TP0: 7}).committable == {TP0: 7}


def test_offsets_behind_pending_rows_wait_for_them(store: MemoryStore) -> None:
    b = Batcher(store, max_rows=10, clock=Clock())
    b.add(rows(2), offsets={TP0: 3})
    assert b.add([], offsets={TP1: 9}).committable == {}
    assert b.flush().committable == {TP0: 3, TP1: 9}


def test_outage_backs_off_exponentially_and_loses_nothing(store: MemoryStore) -> None:
    clock = Clock()
    b = Batcher(store, max_rows=2, backoff=Backoff(initial=1, maximum=5), clock=clock)
    store.down = True
    out = b.add(rows(4), offsets={TP0: 4})
    assert out.error is not None and out.committable == {}
    assert b.retry_in() == 1.0
    clock.now = 0.5
    assert b.poll().written_rows == 0 and store.attempts == 1  # not due yet
    delays = []
    for _ in range(4):
        clock.now += b.retry_in() or 0.0
        b.poll()
        delays.append(b.retry_in())
    assert delays == [2.0, 4.0, 5.0, 5.0]
    store.down = False
    clock.now += 5.0
    out = b.poll()
    assert out.written_rows == 4 and out.committable == {TP0: 4}
    # each sealed batch kept its token across retries: no duplicates were stored
    assert store.stored_rows == 4
    assert [t for t, _ in store.inserts] == [dedup_token_for(rows(2)), dedup_token_for(rows(2, 2))]


def test_retry_after_hint_is_respected(store: MemoryStore) -> None:
    clock = Clock()
    b = Batcher(store, max_rows=1, backoff=Backoff(initial=0.1), clock=clock)
    store.fail_next, store.retry_after = 1, 3.0
    b.add(rows(1))
    assert b.retry_in() == 3.0


def test_replayed_identical_batch_is_deduplicated_by_token(store: MemoryStore) -> None:
    for _ in range(2):
        Batcher(store, max_rows=3, clock=Clock()).add(rows(3))
    assert store.stored_rows == 3


def test_flush_blocking_times_out_with_the_outage(store: MemoryStore) -> None:
    clock = Clock()
    b = Batcher(store, max_rows=5, backoff=Backoff(initial=1, maximum=1), clock=clock)
    store.down = True
    b.add(rows(1), offsets={TP0: 1})

    def sleep(seconds: float) -> None:
        clock.now += seconds

    with pytest.raises(StoreError, match="simulated outage"):
        b.flush_blocking(timeout=3, sleep=sleep)
    assert b.committable == {} and b.pending_rows == 1


def test_drop_pending_forgets_rows_and_their_offsets(store: MemoryStore) -> None:
    b = Batcher(store, max_rows=5, clock=Clock())
    b.add(rows(3), offsets={TP0: 3})
    assert b.drop_pending() == 3
    assert b.flush().committable == {} and store.stored_rows == 0


def test_non_retryable_error_propagates_and_keeps_the_batch(store: MemoryStore) -> None:
    b = Batcher(store, max_rows=1, clock=Clock())
    store.close()
    with pytest.raises(StoreError, match="closed"):
        b.add(rows(1), offsets={TP0: 1})
    assert b.committable == {} and b.pending_rows == 1


def test_memory_store_reads_like_final(store: MemoryStore) -> None:
    store.write(rows(3), dedup_token="a")  # noqa: S106
    store.write(rows(2, start=1), dedup_token="b")  # noqa: S106
    got = store.query("s1", "pm25", T0, T0 + timedelta(hours=1), AreaLevel.street)
    assert [r.sum for r in got] == [0.0, 1.0, 2.0]
    assert store.stored_rows == 5


class EncodingMemoryStore(MemoryStore):
    """The in-memory store taking RowBinary payloads, as the embedded engine does: each
    payload is decoded back to rows only to be kept (the memory store keeps rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.init()
        self.encoded: list[tuple[bytes, str]] = []
        self.encodings = 0
        self._rows_of: dict[bytes, list[StoreRow]] = {}

    def encode(self, rows: Sequence[StoreRow]) -> bytes:
        self.encodings += 1
        payload = rows_to_rowbinary(rows)
        self._rows_of[payload] = list(rows)
        return payload

    def write_encoded(self, payload: bytes, *, dedup_token: str) -> None:
        self.encoded.append((payload, dedup_token))
        self.write(self._rows_of[payload], dedup_token=dedup_token)


def test_an_encoding_store_is_encoded_once_per_batch_and_its_token_hashes_the_payload() -> None:
    store = EncodingMemoryStore()
    assert isinstance(store, EncodingStore)
    clock = Clock()
    b = Batcher(store, max_rows=2, backoff=Backoff(initial=1.0), clock=clock)
    store.fail_next = 2
    b.add(rows(2), offsets={TP0: 2})
    for _ in range(3):
        clock.now += b.retry_in() or 0.0
        b.poll()
    assert store.attempts == 3 and store.stored_rows == 2
    assert store.encodings == 1  # retries send the bytes made the first time
    payload, token = store.encoded[-1]
    assert payload == rows_to_rowbinary(rows(2))
    assert token == payload_token(payload, 2) != dedup_token_for(rows(2))
    assert [t for t, _ in store.inserts] == [token]


def test_payload_tokens_drop_only_an_exact_repeat() -> None:
    store = EncodingMemoryStore()
    changed = store_row(row_model(rows(3)[2]).model_copy(update={"min": 1.5}))
    for batch in (rows(3), rows(3), [*rows(2), changed]):
        Batcher(store, max_rows=3, clock=Clock()).add(batch)
    tokens = [token for _, token in store.encoded]
    assert tokens[0] == tokens[1] != tokens[2]
    assert store.stored_rows == 6  # the repeat was dropped, the changed batch was not
