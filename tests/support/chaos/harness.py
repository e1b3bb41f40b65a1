"""One chaos scenario: the chaos topology deployed under its own prefix, workers for it,
an observer of its outputs, and the report row it ends with."""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.kafka.admin import create_topics
from pipeline.topology import Topology, parse_topology
from tests.support.chaos import report
from tests.support.chaos.compare import Outcome, Tally
from tests.support.chaos.observe import Observer
from tests.support.chaos.stream import SEED, ChaosInput, chaos_topology
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.paths import DEMO
from tests.support.worker import WorkerProcess

#: Seconds a run may take to equal the dry run once its last fault is over.
CATCH_UP = 240.0


@dataclass
class Scenario:
    """A fault's run: `deploy()`, then workers and an observer; `finish()` reports."""

    name: str
    bootstrap: str
    stream: ChaosInput
    expected: Outcome
    workdir: Path
    replication: int = 1
    min_insync: int | None = None
    store: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    topology: Topology | None = None
    path: Path | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower()

    @property
    def prefix(self) -> str:
        return f"chaos.{self.slug}.{uuid.uuid4().hex[:6]}."

    def use_clickhouse(self, server: ClickHouseHTTPServer) -> Scenario:
        """Store through clickhouse-connect, in a database of its own on `server` (a
        store several workers share; one that can be stopped)."""
        database = f"chaos_{uuid.uuid4().hex[:10]}"
        self.store = {"store": "clickhouse", "clickhouse": {"database": database}}
        self.env.update(
            CITYOPS_CLICKHOUSE_URL=server.url, CITYOPS_CLICKHOUSE_USER=server.user or "",
            CITYOPS_CLICKHOUSE_PASSWORD=server.password or "",
        )  # fmt: skip
        return self

    async def deploy(self) -> Topology:
        data = chaos_topology(
            self.prefix, replication=self.replication, min_insync=self.min_insync,
            store=self.store,
        )  # fmt: skip
        self.path = self.workdir / "topology.yaml"
        self.path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.topology = parse_topology(data, DEMO.parent)
        plan = self.topology.topic_plan()
        await create_topics(self.bootstrap, plan)
        if self.replication > 1:
            await self._wait_full_isr([spec.name for spec in plan])
        return self.topology

    async def _wait_full_isr(self, topics: list[str], timeout: float = 60.0) -> None:
        """Until every partition of `topics` has a leader and all its replicas in sync.

        Why: the previous scenario may have just restarted a node, and topics created
        while it rejoins can start with partitions it does not serve yet; a scenario
        starts from a settled cluster, so a stall in it is the fault's, not the last one's.
        """
        deadline = time.monotonic() + timeout
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            while True:
                found = await admin.describe_topics(topics)
                lagging = [
                    f"{t['topic']}[{p['partition']}]"
                    for t in found
                    for p in t["partitions"]
                    if p["leader"] < 0 or len(p["isr"]) < len(p["replicas"])
                ]
                if not lagging and len(found) == len(topics):
                    return
                if time.monotonic() > deadline:
                    msg = f"partitions not in full sync after {timeout:.0f} s: {lagging[:5]}"
                    raise AssertionError(msg)
                await asyncio.sleep(0.5)
        finally:
            await admin.close()

    def worker(self, instance: str = "", group: str | None = None) -> WorkerProcess:
        assert self.path is not None and self.topology is not None, "deploy() first"
        worker = WorkerProcess(
            self.path, self.bootstrap, self.workdir, prefix=self.topology.topics.prefix,
            worker_id=group or f"chaos-{self.slug}", instance=instance,
            env={"PYTHONFAULTHANDLER": "1", **self.env},
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def observer(self) -> Observer:
        assert self.topology is not None, "deploy() first"
        return Observer(self.bootstrap, self.topology, self.stream, self.expected)

    def finish(self, tally: Tally, recover_s: float, note: str = "") -> None:
        """Add the report row; fail when anything was lost or mismatched, with what each
        worker's log says (an exit's reason, the errors before a stall)."""
        records = len(self.stream.records)
        report.ROWS.append(report.Row(self.name, records, tally, recover_s, note))
        if not tally.clean:
            stories = "\n".join(
                f"--- worker {w.log_path.name} (exit {w.process.poll() if w.process else None})"
                f" ---\n{w.story(limit=30)}"
                for w in self.workers
            )
            msg = f"{self.name}: {tally.summary()}\n{stories}"
            raise AssertionError(msg)
