"""A readings batch's positions: where each reading sits, for replay detection."""

from __future__ import annotations

from pipeline.engine.batches import ReadingColumns, positions
from pipeline.engine.emit import ORIGIN_SPAN, Position, SourceRef
from pipeline.models import ReadingBatch, ReadingRow


def _row(n: int) -> ReadingRow:
    return ReadingRow(
        f"e{n}", "s1", "pm25", float(n), "ug/m3", 1_700_000_000_000_000 + n, "d1", None, None,
        None, None, None, "canonical", 1_700_000_000_500_000,
    )  # fmt: skip


def test_a_batch_naming_its_origins_gives_each_reading_its_raw_position() -> None:
    columns = ReadingColumns()
    columns.add(_row(0), SourceRef("raw", 2, 7), 0)
    columns.add(_row(1), SourceRef("raw", 2, 7), 1)  # a gateway message's second reading
    columns.add(_row(2), SourceRef("raw", 0, 3), 0)
    batch = ReadingBatch.model_validate_json(columns.encode())
    where = positions(batch, SourceRef("readings", 5, 90))
    assert where == [
        Position("raw:2", 7 * ORIGIN_SPAN), Position("raw:2", 7 * ORIGIN_SPAN + 1),
        Position("raw:0", 3 * ORIGIN_SPAN),
    ]  # fmt: skip
    assert all(type(p) is Position for p in where)
    assert [p.partition for p in where if p] == ["raw:2", "raw:2", "raw:0"]


def test_a_batch_without_origins_is_placed_in_its_own_record() -> None:
    columns = ReadingColumns()
    for n in range(3):
        columns.add(_row(n))
    batch = ReadingBatch.model_validate_json(columns.encode())
    where = positions(batch, SourceRef("readings", 1, 4))
    assert where == [Position("readings:1", 4 * ORIGIN_SPAN + i) for i in range(3)]
    assert all(type(p) is Position for p in where)
    assert [p.offset for p in where if p] == [4 * ORIGIN_SPAN + i for i in range(3)]
    assert positions(batch, SourceRef("readings", None, None)) == [None, None, None]
