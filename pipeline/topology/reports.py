"""The ``report_categories`` section: what citizens can report and when it opens an incident.

Why: an urgent report (gas smell) opens an incident at once; others open one only when
enough reports of the category cluster in space and time, so one report is not an incident.
A report may also call itself urgent (a canonical report's ``urgent: true``): whether that
flag opens an incident at once is the category's ``honour_urgent_flag``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, model_validator

from pipeline.models import Severity
from pipeline.topology.base import Frozen, Ident, Text, repeated_ids
from pipeline.topology.durations import Duration
from pipeline.topology.errors import ErrorList, Issues

__all__ = ["ClusterRule", "ReportCategory", "check_categories"]


class ClusterRule(Frozen):
    """``count`` reports of a category within ``radius_m`` and ``window`` open one incident."""

    count: Annotated[int, Field(ge=2, le=10_000)]
    radius_m: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    window: Duration


class ReportCategory(Frozen):
    """A citizen report category: urgent ones open an incident at once, others by cluster."""

    id: Ident
    name: Text
    name_en: Text | None = None
    urgent: bool = False
    severity: Severity
    cluster: ClusterRule | None = None
    honour_urgent_flag: bool = True
    """Whether a report's own ``urgent: true`` opens an incident at once for this category
    (as every report of an urgent category does), even when the category only clusters or
    only records. The default, true, trusts the source (a hotline operator's judgement);
    false lets the topology alone decide: the flag is kept on the report and ignored."""

    @model_validator(mode="after")
    def _cluster_or_urgent(self) -> ReportCategory:
        if self.urgent and self.cluster is not None:
            raise Issues(
                [
                    (
                        ("cluster",),
                        "an urgent category opens an incident at once; "
                        "remove cluster or set urgent: false",
                    )
                ]
            )
        return self


def check_categories(categories: Sequence[ReportCategory | None]) -> ErrorList:
    """Category ids are unique (None: a category that failed validation)."""
    repeated = repeated_ids(c.id if c is not None else None for c in categories)
    return [
        (f"report_categories[{i}].id", f"duplicate category id {category.id!r}")
        for i, category in enumerate(categories)
        if category is not None and i in repeated
    ]
