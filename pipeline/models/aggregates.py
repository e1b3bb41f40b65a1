"""The aggregate row: statistics of one metric in one area over one window.

Why here and not in `pipeline/aggregates/`: it is what the store keeps and what
`cityops aggregates query` prints, so the sinks (below the aggregates floor) need it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pipeline.models.base import SCHEMA_VERSION, Finite, UtcDatetime, _Event
from pipeline.models.enums import AreaLevel

__all__ = ["STORE_ROW_FIELDS", "AggregateRow", "StoreRow", "row_model", "store_row", "trusted_row"]


class AggregateRow(_Event):
    """Statistics of one metric in one area over one tumbling window."""

    window_start: UtcDatetime
    window_end: UtcDatetime
    level: AreaLevel
    area_code: str
    metric: str
    count: int = Field(ge=0)
    sum: Finite
    min: Finite
    max: Finite
    mean: Finite
    breaches: int = Field(default=0, ge=0)
    schema_version: int = SCHEMA_VERSION


# What validation records as given (every field but schema_version). One set shared by
# every trusted row: a set of its own per row was one more object for the collector to
# walk, a third of a row's, and pydantic changes only a copy's (`model_copy`); a row is
# frozen, so nothing adds to its own.
_GIVEN = set(AggregateRow.model_fields) - {"schema_version"}
_new = object.__new__
# The setters of a model's own slots, taken from their descriptors: a C call each, where
# `object.__setattr__` first looks the name up (a fifth of building a row).
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def trusted_row(fields: dict[str, Any]) -> AggregateRow:
    """A row from every field but `schema_version`, computed and checked by this process
    (a closed window's state: times already in UTC), built without validation.

    Why not `model_construct`: its generic walk over the fields costs ~11 us a row against
    ~1.3 here, and with a grid level a worker closes one or two rows per reading. `fields`
    becomes the row's own `__dict__`: the caller hands over a fresh dict.
    """
    fields["schema_version"] = SCHEMA_VERSION
    row = _new(AggregateRow)
    _set_dict(row, fields)
    _set_fields_set(row, _GIVEN)
    _set_extra(row, None)
    _set_private(row, None)
    return row


StoreRow = tuple[datetime, datetime, str, str, str, int, float, float, float, float, int, int]
"""A closed window's row as the worker moves it from its state to the store: the fields
of `AggregateRow` in `STORE_ROW_FIELDS` order, the level by its name.

Why a plain tuple and not the model: with the sample's grid level a worker closes about
two rows per reading, and building a model per row (a dict and an object the cyclic
collector walks until the store has the row) cost the analyze stage 2.5 to 3 us a
reading and the worker 7% of its rate (alternating runs of 200,000 readings: analyze
13.4 / 13.1 us against 15.7 / 16.2; a worker 26,137 / 25,671 readings/s against 24,564 /
23,660). A tuple of times, strings and numbers is one allocation, and the collector stops
walking it after its first pass. The model is made where a row leaves the worker's path
(`row_model`): the dry run's output, the in-memory store, a query's answer."""

STORE_ROW_FIELDS: tuple[str, ...] = (
    "window_start",
    "window_end",
    "level",
    "area_code",
    "metric",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "breaches",
    "schema_version",
)
"""The names of a `StoreRow`'s items, in order: also the store's insert columns."""

_LEVEL_INDEX = STORE_ROW_FIELDS.index("level")


def row_model(row: StoreRow) -> AggregateRow:
    """The model of a row this process closed (not validated again: see `trusted_row`)."""
    fields: dict[str, Any] = dict(zip(STORE_ROW_FIELDS, row, strict=True))
    fields["level"] = AreaLevel(fields["level"])
    return trusted_row(fields)


def store_row(model: AggregateRow) -> StoreRow:
    """A model's fields as the store's row (what a test or a tool hands a store)."""
    values = [getattr(model, name) for name in STORE_ROW_FIELDS]
    values[_LEVEL_INDEX] = AreaLevel(values[_LEVEL_INDEX]).value
    return tuple(values)
