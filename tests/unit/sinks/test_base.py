"""The backend-neutral contract: dedup tokens and the city roll-up."""

from __future__ import annotations

import pytest

from pipeline.models import AreaLevel
from pipeline.sinks.base import StoreError, check_token, dedup_token_for, roll_up_city
from tests.unit.sinks.rows import MINUTE, T0, aggregate_row, stored_row


def test_equal_batches_get_equal_tokens_and_any_change_a_new_one() -> None:
    batch = [stored_row(), stored_row(area_code="d2")]
    token = dedup_token_for(batch)
    assert dedup_token_for([stored_row(), stored_row(area_code="d2")]) == token
    assert dedup_token_for([stored_row(), stored_row(area_code="d2", sum=10.5)]) != token
    assert dedup_token_for(batch[::-1]) != token
    assert check_token(token) == token


@pytest.mark.parametrize(
    "change",
    [
        {"window_start": T0 + MINUTE / 60_000},  # a microsecond later
        {"window_end": T0 + 2 * MINUTE},
        {"level": AreaLevel.street},
        {"area_code": "d3"},
        {"metric": "no2"},
        {"count": 5},
        {"sum": 10.000000000000002},  # the next float
        {"min": 1.25},
        {"max": 4.5},
        {"mean": 2.25},
        {"breaches": 2},
        {"schema_version": 2},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_change_of_any_one_field_changes_the_token(change: dict[str, object]) -> None:
    assert dedup_token_for([stored_row(**change)]) != dedup_token_for([stored_row()])


def test_a_batch_keeps_the_token_the_model_rows_gave_it() -> None:
    """Rows moved as models until 2026-12-05; a batch replayed across that upgrade must
    get the token its first insert got, or the ClickHouse server stores it twice. The
    value is what the model version computed for this batch."""
    batch = [stored_row(), stored_row(area_code="d2", level=AreaLevel.street)]
    assert dedup_token_for(batch) == "agg-2-8605507b92f38622ee3a96ffe31ba9e8"


def test_a_token_that_could_escape_the_settings_clause_is_refused() -> None:
    with pytest.raises(StoreError, match="dedup token must match"):
        check_token("x' , readonly = 1 --")


def test_city_rows_pool_the_districts_of_each_window() -> None:
    later = T0 + MINUTE
    districts = [
        aggregate_row(window_start=later, window_end=later + MINUTE, count=1, sum=8.0),
        aggregate_row(area_code="d1", count=4, sum=10.0, min=1.5, max=4.0, breaches=1),
        aggregate_row(area_code="d2", count=1, sum=5.0, min=5.0, max=5.0, breaches=0),
    ]
    city = roll_up_city(districts, "sh")
    assert [(r.window_start, r.count, r.sum, r.mean) for r in city] == [
        (T0, 5, 15.0, 3.0),
        (later, 1, 8.0, 8.0),
    ]
    first = city[0]
    assert (first.level, first.area_code, first.min, first.max, first.breaches) == (
        AreaLevel.city,
        "sh",
        1.5,
        5.0,
        1,
    )
