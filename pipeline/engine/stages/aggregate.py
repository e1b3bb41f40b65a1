"""Readings -> closed-window aggregate rows (street and district levels)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import orjson

from pipeline.aggregates.watermark import home_partition, merge_progress
from pipeline.aggregates.windows import WindowState
from pipeline.engine.batches import sensors_by_key
from pipeline.engine.emit import Position
from pipeline.engine.window_table import APPLY, REPLAYED, SKIP, WindowTable
from pipeline.models import AggregateRow, AreaLevel, ReadingBatch, ReadingRow, StoreRow
from pipeline.rules import detection as detect
from pipeline.topology import Topology


class AggregateStage:
    """Readings -> closed-window aggregate rows for the street and district levels.

    City rows are rolled up from district rows when read (the store's city query): a city
    spans every partition, and one worker sees only its own, while a district lives wholly
    in one partition, so its rows are exact wherever it is computed.
    """

    def __init__(self, topology: Topology, backing: MutableMapping[str, Any]) -> None:
        self.topology = topology
        agg = topology.aggregation
        self._levels = tuple(
            AreaLevel(level) for level in agg.levels if AreaLevel(level) != AreaLevel.city
        )
        self._new = lambda: WindowState(
            window=agg.window,
            allowed_lateness=agg.allowed_lateness,
            city_code=topology.city.code,
            levels=self._levels,
            idle_timeout=topology.event_time.idle(agg.window),
        )
        self._sensors_by_key = sensors_by_key(topology)
        self.states = WindowTable(backing, self._new)
        self.breaches = detect.BreachCheck(topology)
        self.late = 0

    def persist(self) -> int:
        """Write changed states back; how many."""
        return self.states.persist()

    def forget(self) -> None:
        """Drop the cache (after a rebalance)."""
        self.states.forget()

    def on_readings(
        self,
        key: str,
        batch: ReadingBatch,
        where: Sequence[Position | None],
        rows: Sequence[ReadingRow] | None = None,
    ) -> list[StoreRow]:
        """Count the batch's readings; return the rows of the windows they closed.

        `rows` are the batch's rows when the caller has them already."""
        district = self.states.get(key)
        state = district.state
        breached = self.breaches.value
        marks = district.marks(where)
        width = state.window_us
        walk = batch.rows() if rows is None else rows
        if marks.count(APPLY) == len(marks):  # no replay: the batch in one pass
            walk = list(walk)
            if walk:
                self._start(key, state, walk[0])
            self.late += state.add_rows(walk, where, breached)
        else:
            for row, position, mark in zip(walk, where, marks, strict=True):
                if mark == SKIP:
                    continue  # a replay: already counted
                if mark == REPLAYED:
                    event_us = row.observed_at_us
                    if district.closed_by(event_us - event_us % width + width):
                        continue  # its window's row was written before the crash
                self._start(key, state, row)
                partition = home_partition(row, position)
                holding = () if mark == APPLY else district.holding
                if state.add_row(row, breached(row.metric, row.value), partition, holding):
                    self.late += 1
        # The batch's progress covers its own readings: counted after them.
        merge_progress(state.progress, batch.progress)
        return state.advance()

    def _start(self, key: str, state: WindowState, row: ReadingRow) -> None:
        """A new state waits for its area's registered sensors, from `row` on."""
        if not state.started:
            state.clock.expect(
                self._sensors_by_key.get(key, ()), row.observed_at_us, row.arrived_us
            )

    def finish(self) -> list[StoreRow]:
        """Close every open window (end of a dry run's input)."""
        rows: list[StoreRow] = []
        for key in self.states.keys():
            rows.extend(self.states.get(key).state.flush_all())
        return rows


def rows_to_jsonl(rows: Iterable[AggregateRow]) -> bytes:
    """Aggregate rows as JSON lines (the dry run's aggregates.jsonl)."""
    return b"".join(orjson.dumps(row.model_dump(mode="json")) + b"\n" for row in rows)
