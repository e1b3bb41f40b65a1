"""The Faust floor: a bare Faust agent that only consumes the pre-loaded raw topic.

Why: it is what one Kafka message costs when it is a Faust event, with no work at all,
in one process (about 200 us here). cityops reads raw records with aiokafka `getmany`
and hands the stateful agents batches, so the report shows how far above this floor
the pipeline runs, beside the aiokafka passthrough and Kafka's own ceiling.

Run as a subprocess (a Faust worker owns its event loop and signal handlers):
    python -m bench.faust_floor --bootstrap H:P --topic T --expected N --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _consume(bootstrap: str, topic: str, expected: int, window: float, out: Path) -> None:
    import faust  # imported here: the parent process never loads Faust

    app = faust.App(
        f"bench-faust-floor-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        datadir=str(out.parent / "faust-floor-data"),  # not `<app id>-data` in the checkout
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        web_enabled=False,
        stream_buffer_maxsize=131072,
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes)
    state: dict[str, Any] = {"count": 0, "first": None}

    def finish() -> None:
        elapsed = time.monotonic() - (state["first"] or time.monotonic())
        rate = state["count"] / max(elapsed, 1e-3)
        result = {"records": state["count"], "seconds": round(elapsed, 2), "msgs_per_s": rate}
        out.write_text(json.dumps(result))
        os._exit(0)  # a bare floor: no graceful shutdown to time

    @app.agent(source)
    async def floor(stream: Any) -> None:
        async for events in stream.take_events(5000, within=0.02):
            now = time.monotonic()
            if state["first"] is None:
                state["first"] = now
            state["count"] += len(events)
            if state["count"] >= expected or now - state["first"] > window:
                finish()

    app.finalize()
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


def run(
    bootstrap: str, topic: str, *, expected: int, window: float, workdir: Path
) -> dict[str, Any]:
    """Run the floor in a subprocess over ``topic``; msgs/s from first event to last."""
    out = workdir / f"faust-floor-{uuid.uuid4().hex[:6]}.json"
    args = [sys.executable, "-m", "bench.faust_floor", "--bootstrap", bootstrap, "--topic", topic,
            "--expected", str(expected), "--window", str(window), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=window + 120, check=False)
    if not out.exists():
        tail = proc.stderr.decode(errors="replace")[-2000:]
        msg = f"the Faust floor wrote no result (exit {proc.returncode}): {tail}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.argv = [sys.argv[0], "worker"]  # Faust's command line: the worker, nothing else
    _consume(args.bootstrap, args.topic, args.expected, args.window, args.out)


if __name__ == "__main__":
    main()
