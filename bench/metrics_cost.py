"""What the worker's Prometheus metrics cost per event, on the normalize hot path.

Runs the normalize stage over the same canonical readings twice in one process: bare,
and with exactly the metric calls the worker's normalize agent makes per record (events
in by kind and format, per-emit counters, a latency observation). Reports events/s for
both and the ratio, so the number is a within-run comparison.

    .venv/bin/python bench/metrics_cost.py --events 50000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from pipeline.engine.emit import SourceRef
from pipeline.engine.stages import NormalizeStage
from pipeline.engine.worker.telemetry import count_emit as _count
from pipeline.metrics import Metrics
from pipeline.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    topology = load_topology(ROOT / "topologies" / "shanghai.yaml")
    sensors = [s for s in topology.sensors if "pm25" in s.metrics][:50]
    messages = [
        orjson.dumps({
            "event_id": f"m{i}", "sensor_id": sensors[i % len(sensors)].id, "metric": "pm25",
            "value": 20.0 + i % 100, "unit": "ug/m3",
            "observed_at": f"2026-11-28T08:{(i // 60) % 60:02d}:{i % 60:02d}Z",
        })
        for i in range(args.events)
    ]  # fmt: skip
    metrics = Metrics.create(CollectorRegistry())

    def bare() -> float:
        stage = NormalizeStage(topology)
        started = time.perf_counter()
        for i, raw in enumerate(messages):
            stage.process(raw, (), SourceRef("raw", 0, i))
        return time.perf_counter() - started

    def measured() -> float:
        stage = NormalizeStage(topology)
        started = time.perf_counter()
        for i, raw in enumerate(messages):
            emits = stage.process(raw, (), SourceRef("raw", 0, i))
            metrics.child(metrics.events_in, "raw_sensors", stage.last_format).inc()
            for emit in emits:
                _count(metrics, emit, "normalize")
            metrics.child(metrics.processing_latency, "normalize").observe(0.001)
        return time.perf_counter() - started

    bare_best = min(bare() for _ in range(args.rounds))
    with_best = min(measured() for _ in range(args.rounds))
    n = args.events
    print(f"normalize without metrics: {n / bare_best:,.0f} events/s")
    print(f"normalize with metrics:    {n / with_best:,.0f} events/s")
    print(f"metrics cost: {(with_best - bare_best) / n * 1e6:.2f} µs/event, "
          f"throughput ratio {bare_best / with_best:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
