"""cityops at saturation: pre-loaded readings through whole workers, timed by the broker.

Why pre-load: the raw topic holds N readings before the worker starts, so the worker is
never waiting for input; the clock starts at its first output (start-up, chDB import and
the group join are excluded) and stops when its group has committed every raw record and
every reading it produced (detect and aggregate included; aggregate commits only after
the store acknowledged the closed windows). Once it has, the run is timed by the records
themselves: from the first readings batch's time to the newest time in the analysis's
changelogs (its last pass writes its state last), since the commits alone place the end
only to Faust's commit interval (1 s) and the watch's polling (0.25 s), a third of a
two-worker run; `seconds_polled` keeps the coarse figure.

Why several workers join first (`join_first`): started on a pre-loaded topic, the first
worker to join takes every partition and starts work; the second one's join then stops
both for a rebalance and a table recovery inside the measured time, and two workers gave
anything from 0.58x to 1.51x of one. Scaling is a property of a running group, so for it
the workers join an empty topic, and the input is loaded once all of them are ready
(`/readyz`), for one worker as for two.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench import kafkautil
from bench.runner import Worker
from pipeline.engine.routing import GROUP_TABLES
from pipeline.topology import Topology

#: Seconds the workers of a `join_first` run may take to become ready.
JOIN_TIMEOUT_S = 120.0


def run_workers(
    *,
    topology_path: Path,
    topology: Topology,
    bootstrap: str,
    workdir: Path,
    prefix: str,
    expected: int,
    workers: int,
    window: float,
    env: dict[str, str] | None = None,
    on_started: Any = None,
    readings_per_record: float = 1.0,
    load_after_join: list[Any] | None = None,
) -> dict[str, Any]:
    """Start ``workers`` workers in one group on a pre-loaded prefix; readings/s.

    ``expected`` counts raw records; each holds ``readings_per_record`` readings (a
    gateway's message holds many). A run cut short by ``window`` counts the raw records
    its group committed, which normalize may have taken ahead of analysis: it is marked
    not caught up, and its rate is an upper bound. With ``load_after_join`` (raw records)
    the prefix starts empty: those records are loaded once every worker is ready.
    """
    group = f"{prefix.rstrip('.')}-group-{uuid.uuid4().hex[:6]}"
    procs = [
        Worker(
            topology_path, bootstrap, workdir, prefix=prefix, group=group,
            name=f"{group}-w{i}", env=env,
        ).start()
        for i in range(workers)
    ]  # fmt: skip
    try:
        if on_started is not None:
            on_started(procs)
        if load_after_join is not None:
            # The intake reads both raw topics (sensors and reports).
            _wait_ready(procs, 2 * topology.topics.partitions)
        watch = kafkautil.watch_worker(
            bootstrap, group,
            raw_topic=topology.topics.name("raw_sensors"),
            readings_topic=topology.topics.name("readings"),
            expected=expected, window=window,
            alive=lambda: all(p.alive() for p in procs),
            state_topics=analysis_changelogs(group),
        )  # fmt: skip
        progress = asyncio.run(_load_while(watch, bootstrap, load_after_join))
        rss = [p.peak_rss_mb() for p in procs]
        anon = [p.peak_anon_mb() for p in procs]
        cpu = [p.cpu_share() for p in procs]
    except RuntimeError as exc:
        logs = "\n".join(p.log_tail() for p in procs)
        msg = f"{exc}\n{logs}"
        raise RuntimeError(msg) from exc
    finally:
        for p in procs:
            p.stop()
        kafkautil.drop_step(bootstrap, prefix)
    assert progress.first_output_at is not None and progress.done_at is not None
    polled = max(progress.done_at - progress.first_output_at, 1e-3)
    first, done = progress.first_output_time, progress.done_time
    readings = round(progress.processed * readings_per_record)
    cpu_s = None
    if first is not None and done is not None and done > first:
        seconds, timed_by = done - first, "record times"
        used = [p.cpu_between(first, done) for p in procs]
        if readings and all(u is not None for u in used):
            cpu_s = sum(u for u in used if u is not None)
    else:
        seconds, timed_by = polled, "polling"
    return {
        "workers": workers,
        "processed": readings,
        "raw_records": progress.processed,
        "preloaded": expected,
        "caught_up": progress.caught_up,
        "seconds": round(seconds, 3),
        "seconds_polled": round(polled, 2),
        "timed_by": timed_by,
        "readings_per_s": readings / seconds,
        "peak_rss_mb": [None if r is None else round(r, 1) for r in rss],
        "peak_anon_mb": [None if a is None else round(a, 1) for a, _ in anon],
        "file_mb_at_peak_anon": [None if f is None else round(f, 1) for _, f in anon],
        "cpu_share": [None if c is None else round(c, 2) for c in cpu],
        # The workers' CPU over the timed stretch: what a reading costs them.
        "worker_cpu_s": None if cpu_s is None else round(cpu_s, 3),
        "worker_cores": None if cpu_s is None else round(cpu_s / seconds, 2),
        "cpu_us_per_reading": None if cpu_s is None else round(cpu_s / readings * 1e6, 1),
        "group": group,
    }


def analysis_changelogs(group: str) -> list[str]:
    """The changelog topics of the analyze agent's tables in a worker of ``group`` (Faust
    names a table's changelog `<app id>-<table>-changelog`; the app id is the group)."""
    return [f"{group}-{table}-changelog" for table in GROUP_TABLES["analyze"]]


def _wait_ready(procs: list[Worker], raw_partitions: int) -> None:
    """Return once every worker is ready and their intakes share the raw partitions
    (readiness alone does not say that the intake's own consumer group has finished its
    rebalance); RuntimeError after `JOIN_TIMEOUT_S`."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while True:
        shares = [p.raw_partitions_when_ready() for p in procs]
        if all(shares) and sum(share or 0 for share in shares) == raw_partitions:
            return
        if time.monotonic() > deadline or not all(p.alive() for p in procs):
            msg = f"the workers were not all ready within {JOIN_TIMEOUT_S:.0f} s: {shares}"
            raise RuntimeError(msg)
        time.sleep(0.2)


async def _load_while(watch: Any, bootstrap: str, records: list[Any] | None) -> Any:
    """Await `watch`, loading `records` (if any) while it runs."""
    watching = asyncio.ensure_future(watch)
    if records is not None:
        acked = (await kafkautil.preload(bootstrap, records)).acked
        if acked != len(records):
            watching.cancel()
            msg = f"the broker took {acked} of {len(records)} records"
            raise RuntimeError(msg)
    return await watching


def measure(
    *,
    topology_path: Path,
    topology: Topology,
    bootstrap: str,
    workdir: Path,
    prefix: str,
    count: int,
    workers: int,
    window: float,
    env: dict[str, str] | None = None,
    on_started: Any = None,
    gateway: int = 1,
    join_first: bool = False,
) -> dict[str, Any]:
    """Create the prefix's topics, load ``count`` readings (``gateway`` a message) before
    the workers start, or once they are all ready (``join_first``), and run them."""
    topo = kafkautil.with_prefix(topology, prefix)
    records = kafkautil.readings(topo, count)
    if gateway > 1:
        records = kafkautil.gateway_batches(records, gateway)
    asyncio.run(kafkautil.create_all(bootstrap, topo))
    expected, preload_s = len(records), None
    if not join_first:
        started = time.monotonic()
        expected = asyncio.run(kafkautil.preload(bootstrap, records)).acked
        preload_s = round(time.monotonic() - started, 2)
    result = run_workers(
        topology_path=topology_path, topology=topo, bootstrap=bootstrap, workdir=workdir,
        prefix=prefix, expected=expected, workers=workers, window=window, env=env,
        on_started=on_started, readings_per_record=count / max(len(records), 1),
        load_after_join=records if join_first else None,
    )  # fmt: skip
    result["preload_s"] = preload_s
    result["joined_first"] = join_first
    return result
