"""Watch a run's public outputs while faults happen: the incident and audit topics (read
from the start by a consumer outside any group) and the store through the worker's
`/aggregates` endpoint; wait, event-driven, until they equal the dry run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.models import AggregateRow
from pipeline.topology import Topology
from tests.support.chaos.compare import Outcome, Tally, compare
from tests.support.chaos.stream import START, ChaosInput

#: Seconds without any new output after which a run counts as stalled.
STALL = 45.0


@dataclass
class Observer:
    """Reads the incident and audit topics in the background into `outcome`."""

    bootstrap: str
    topology: Topology
    stream: ChaosInput
    expected: Outcome
    outcome: Outcome = field(default_factory=Outcome)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        city = self.topology.topics.name("incidents_city")
        audit = self.topology.topics.name("audit")
        consumer = AIOKafkaConsumer(
            city, audit, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 << 20,
            metadata_max_age_ms=5_000,
        )  # fmt: skip
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for tp, records in batch.items():
                    if tp.topic != city:
                        for record in records:
                            self.outcome.add_audit(record.value)
                        continue
                    for record in records:
                        where = (tp.partition, record.offset, record.timestamp)
                        self.outcome.add_incident(record.value, where)
        finally:
            await consumer.stop()

    def audit_progress(self) -> float:
        """Share of the dry run's audit entries seen so far (0..1)."""
        return len(self.outcome.audit) / max(1, len(self.expected.audit))

    def _signature(self) -> tuple[int, int, int]:
        o = self.outcome
        return (sum(o.versions.values()), sum(o.audit.values()), len(o.aggregates))

    async def wait_progress(self, share: float, alive: Callable[[], bool], timeout: float) -> None:
        """Until `share` of the audit entries arrived (the stream is that far along);
        fails when the worker exits, or nothing new arrives for `STALL` seconds."""
        deadline = time.monotonic() + timeout
        last, moved = self._signature(), time.monotonic()
        while self.audit_progress() < share:
            if not alive():
                msg = "the worker exited while the test waited for progress"
                raise AssertionError(msg)
            now = time.monotonic()
            if (sig := self._signature()) != last:
                last, moved = sig, now
            if now > deadline or now - moved > STALL:
                msg = f"stalled at {self.audit_progress():.0%} of the audit (wanted {share:.0%})"
                raise AssertionError(msg)
            await asyncio.sleep(0.2)

    async def settle(
        self, web_port: Callable[[], int | None], *, timeout: float, quiet: float = 2.0
    ) -> tuple[Tally, float]:
        """Poll until nothing is lost, then `quiet` seconds for late duplicates; give up
        after `timeout`, or when nothing new arrived for `STALL` seconds. Return the
        comparison and the seconds it took to catch up."""
        started = time.monotonic()
        last, moved = self._signature(), started
        while True:
            await self._read_store(web_port())
            tally = compare(self.expected, self.outcome)
            now = time.monotonic()
            if tally.caught_up():
                await asyncio.sleep(quiet)
                await self._read_store(web_port())
                return compare(self.expected, self.outcome), now - started
            if (sig := self._signature()) != last:
                last, moved = sig, now
            if now - started > timeout or now - moved > STALL:
                return tally, now - started
            await asyncio.sleep(1.0)

    async def _read_store(self, port: int | None) -> None:
        """The store's rows for every (level, area, metric) the dry run has, through the
        worker's endpoint (chDB allows one process per store: the worker's)."""
        if port is None:
            return
        keys = {(level, area, metric) for level, area, metric, _ in self.expected.aggregates}
        since = (datetime.now(UTC) - START).total_seconds() + 86_400
        rows: list[AggregateRow] = []
        for level, area, metric in sorted(keys):
            query = urllib.parse.urlencode(
                {"area": area, "metric": metric, "level": level, "since": f"{since:.0f}"}
            )
            url = f"http://127.0.0.1:{port}/aggregates?{query}"
            try:
                body = await asyncio.to_thread(_get, url)
            except (OSError, urllib.error.HTTPError):
                return  # the worker or its store is away: keep what was read before
            rows += [AggregateRow.model_validate(doc) for doc in orjson.loads(body)["rows"]]
        self.outcome.aggregates.clear()
        self.outcome.add_rows(rows, self.stream.until)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  # loopback
        return bytes(response.read())
