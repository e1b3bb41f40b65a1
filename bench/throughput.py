"""cityops at saturation: pre-loaded readings through whole workers, timed by the broker.

Why pre-load: the raw topic holds N readings before the worker starts, so the worker is
never waiting for input; the clock starts at its first output (start-up, chDB import and
the group join are excluded) and stops when its group has committed every raw record and
every reading it produced (detect and aggregate included; aggregate commits only after
the store acknowledged the closed windows).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench import kafkautil
from bench.runner import Worker
from pipeline.topology import Topology


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
) -> dict[str, Any]:
    """Start ``workers`` workers in one group on a pre-loaded prefix; readings/s.

    ``expected`` counts raw records; each holds ``readings_per_record`` readings (a
    gateway's message holds many). A run cut short by ``window`` counts the raw records
    its group committed, which normalize may have taken ahead of analysis: it is marked
    not caught up, and its rate is an upper bound.
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
        progress = asyncio.run(
            kafkautil.watch_worker(
                bootstrap, group,
                raw_topic=topology.topics.name("raw_sensors"),
                readings_topic=topology.topics.name("readings"),
                expected=expected, window=window,
                alive=lambda: all(p.alive() for p in procs),
            )
        )  # fmt: skip
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
    assert progress.first_output_at is not None and progress.done_at is not None
    seconds = max(progress.done_at - progress.first_output_at, 1e-3)
    readings = round(progress.processed * readings_per_record)
    return {
        "workers": workers,
        "processed": readings,
        "raw_records": progress.processed,
        "preloaded": expected,
        "caught_up": progress.caught_up,
        "seconds": round(seconds, 2),
        "readings_per_s": readings / seconds,
        "peak_rss_mb": [None if r is None else round(r, 1) for r in rss],
        "peak_anon_mb": [None if a is None else round(a, 1) for a, _ in anon],
        "file_mb_at_peak_anon": [None if f is None else round(f, 1) for _, f in anon],
        "cpu_share": [None if c is None else round(c, 2) for c in cpu],
        "group": group,
    }


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
) -> dict[str, Any]:
    """Create the prefix's topics, pre-load ``count`` readings (``gateway`` a message), run
    the workers."""
    topo = kafkautil.with_prefix(topology, prefix)
    records = kafkautil.readings(topo, count)
    if gateway > 1:
        records = kafkautil.gateway_batches(records, gateway)
    asyncio.run(kafkautil.create_all(bootstrap, topo))
    started = time.monotonic()
    stats = asyncio.run(kafkautil.preload(bootstrap, records))
    preload_s = time.monotonic() - started
    result = run_workers(
        topology_path=topology_path, topology=topo, bootstrap=bootstrap, workdir=workdir,
        prefix=prefix, expected=stats.acked, workers=workers, window=window, env=env,
        on_started=on_started, readings_per_record=count / max(len(records), 1),
    )  # fmt: skip
    result["preload_s"] = round(preload_s, 2)
    return result
