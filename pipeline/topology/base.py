"""What every topology section is built from: the frozen base model and the field types.

Why: every section refuses unknown keys and never changes after validation; codes,
identifiers and names follow one spelling everywhere, so each is defined once here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pipeline.models import AreaLevel, Severity

__all__ = [
    "LEVEL_DEPTH",
    "LEVEL_ORDER",
    "SEVERITY_ORDER",
    "SEVERITY_RANK",
    "Code",
    "EnvName",
    "Finite",
    "Frozen",
    "Ident",
    "MetricName",
    "SensorId",
    "Text",
    "code_as_string",
    "repeated_ids",
]

SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)
LEVEL_ORDER: tuple[AreaLevel, ...] = tuple(AreaLevel)
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}
LEVEL_DEPTH = {lv: i for i, lv in enumerate(LEVEL_ORDER)}


def code_as_string(value: object) -> object:
    """YAML reads unquoted codes (310101) as ints: accept them as strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def repeated_ids(ids: Iterable[str | None]) -> set[int]:
    """Positions whose id an earlier position already has (None: an item that failed)."""
    seen: set[str] = set()
    repeated: set[int] = set()
    for i, ident in enumerate(ids):
        if ident is None:
            continue
        if ident in seen:
            repeated.add(i)
        seen.add(ident)
    return repeated


Code = Annotated[str, BeforeValidator(code_as_string), Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
SensorId = Annotated[
    str, BeforeValidator(code_as_string), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class Frozen(BaseModel):
    """Base of every section: immutable, unknown keys refused, fields by name or alias."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
