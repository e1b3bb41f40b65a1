"""Rows for the store's tables, built as the pipeline builds them: aggregates of every
stored level (street, district, grid) and incident records as the lifecycle publishes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.models import (
    AdminCodes,
    AggregateRow,
    AreaLevel,
    Evidence,
    Incident,
    StoreRow,
    row_model,
)
from pipeline.sinks.incidents import IncidentRow, incident_row

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

#: Resolution-9 H3 cells in Shanghai (Huangpu, Xuhui), as grid area codes.
GRID_CELLS = ("89309959d27ffff", "89309b96d0fffff", "89309958a4bffff")


def models(rows: list[StoreRow]) -> list[AggregateRow]:
    """The closed rows as their models (what a test reads by name)."""
    return [row_model(row) for row in rows]


def aggregate(
    level: AreaLevel, area: str, minute: int, *, metric: str = "pm25", breaches: int = 0,
    count: int = 4, mean: float = 40.0, start: datetime = T0,
) -> AggregateRow:  # fmt: skip
    """One one-minute window of `area` starting `minute` minutes after `start`."""
    begin = start + minute * MINUTE
    return AggregateRow(
        window_start=begin,
        window_end=begin + MINUTE,
        level=level,
        area_code=area,
        metric=metric,
        count=count,
        sum=mean * count,
        min=mean / 2,
        max=mean * 2,
        mean=mean,
        breaches=breaches,
    )


def incident(**changes: Any) -> Incident:
    """A red pm25 breach of sensor aq-001 in Huangpu's Nanjing East Road street."""
    values: dict[str, Any] = {
        "incident_id": "inc-aq-001-pm25",
        "rule_id": "pm25-aqi",
        "kind": "threshold_breach",
        "severity": "red",
        "subject": "aq-001",
        "subject_kind": "sensor",
        "metric": "pm25",
        "evidence": Evidence(
            event_ids=("e1", "e2"),
            peak_value=260.0,
            threshold=250.0,
            first_at=T0,
            last_at=T0 + MINUTE,
            count=2,
        ),  # fmt: skip
        "owner_level": AreaLevel.street,
        "owner_area": "310101002",
        "areas": AdminCodes(district="310101", street="310101002", grid=GRID_CELLS[0]),
        "opened_at": T0,
        "updated_at": T0 + MINUTE,
        "ack_due": T0 + 15 * MINUTE,
        "resolve_due": T0 + 240 * MINUTE,
    }
    values.update(changes)
    return Incident(**values)


def incident_json(location: dict[str, float] | None = None, **changes: Any) -> bytes:
    """The record the lifecycle publishes, with `location` added when given (the
    contract's newer field: `{"lat", "lon"}`)."""
    data = incident(**changes).model_dump(mode="json")
    if location is not None:
        data["location"] = location
    return orjson.dumps(data)


def incident_rows(count: int, *, start: datetime = T0) -> list[IncidentRow]:
    """`count` incidents spread over two districts and their streets, with locations,
    in several states and severities (the dashboards' incident panels have data)."""
    places = (
        ("310101", "310101002", 31.2353, 121.4846),
        ("310104", "310104012", 31.1880, 121.4365),
    )
    states = ("open", "acknowledged", "dispatched", "resolved")
    severities = ("red", "orange", "yellow", "blue")
    rows = []
    for i in range(count):
        district, street, lat, lon = places[i % 2]
        rows.append(
            incident_row(
                incident_json(
                    location={"lat": lat + i * 1e-3, "lon": lon},
                    incident_id=f"inc-{i}",
                    subject=f"aq-{i:03d}",
                    severity=severities[i % 4],
                    state=states[i % 4],
                    owner_area=street,
                    areas=AdminCodes(district=district, street=street, grid=GRID_CELLS[i % 3]),
                    opened_at=start + i * MINUTE,
                    updated_at=start + (i + 1) * MINUTE,
                    version=1 + i % 3,
                )
            )
        )
    return rows
