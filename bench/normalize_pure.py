"""Pure normalize throughput per input format on one core (no Kafka, no I/O).

Run: .venv/bin/python bench/normalize_pure.py [--n 20000] [--registry 100000]
Each message carries one measurement (NGSI: one entity with two catalogue attributes, so
events/s counts readings); the topology is tests/fixtures/normalize-city.yaml.

`--registry N` measures canonical readings at the full city's scale instead: the sample
topology with a generated registry of N sensors (`bench.variants`), one reading per
sensor in turn, as a city reporting every 30 s delivers them, so beyond the normalizer's
sensor cache (16,384) every lookup misses it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import orjson

from pipeline.ingest.normalize import Normalizer
from pipeline.topology import load_topology

ROOT = Path(__file__).parents[1]
T = "2026-05-01T08:00:00+08:00"


def payloads(i: int) -> dict[str, bytes]:
    v = 30 + (i % 50)
    return {
        "canonical": orjson.dumps(
            {"sensor_id": "aq-001", "metric": "pm25", "value": v, "unit": "ug/m3", "observed_at": T}
        ),
        "ngsi-v2": orjson.dumps(
            {
                "id": "aq-001",
                "type": "AirQualityObserved",
                "dateObserved": {"type": "DateTime", "value": T},
                "pm25": {"type": "Number", "value": v, "metadata": {"unitCode": {"value": "GQ"}}},
                "no2": {"type": "Number", "value": v, "metadata": {"unitCode": {"value": "GQ"}}},
            }
        ),
        "ngsi-ld": orjson.dumps(
            {
                "id": "urn:ngsi-ld:AirQualityObserved:aq-001",
                "type": "AirQualityObserved",
                "@context": "https://smartdatamodels.org/context.jsonld",
                "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": T}},
                "pm25": {"type": "Property", "value": v, "unitCode": "GQ"},
                "no2": {"type": "Property", "value": v, "unitCode": "GQ"},
            }
        ),
        "sensorthings": orjson.dumps(
            {"@iot.id": i, "phenomenonTime": T, "result": v, "Datastream": {"@iot.id": 42}}
        ),
        "open311": orjson.dumps(
            {
                "service_request_id": str(i),
                "status": "open",
                "service_code": "water_leak",
                "description": "路面冒水，联系13812345678",
                "requested_datetime": T,
                "lat": 31.24,
                "long": 121.48,
            }
        ),
    }


def registry_rate(sensors: int, rounds: int = 3) -> list[float]:
    """Microseconds a reading, canonical readings of every sensor of a generated registry
    of `sensors` in turn, `rounds` times over fresh normalizers (the cache cold each)."""
    sys.path.insert(0, str(ROOT))
    from bench.variants import with_generated_sensors

    with tempfile.TemporaryDirectory() as work:
        path = with_generated_sensors(
            ROOT / "topologies/shanghai.yaml", Path(work) / "generated.yaml", sensors
        )
        topology = load_topology(path)
    messages = []
    for n, sensor in enumerate(topology.sensors):
        metric = sensor.metrics[0]
        low, high = topology.metrics[metric].range
        value = (low + high) / 2 + (n % 7) / 100
        doc = {"sensor_id": sensor.id, "metric": metric, "value": value, "observed_at": T}
        messages.append(orjson.dumps(doc))
    gc.freeze()
    times = []
    for _ in range(rounds):
        normalizer = Normalizer(topology)
        start = time.process_time()
        for raw in messages:
            result = normalizer.normalize(raw)
            assert not result.rejections, result.rejections
        times.append((time.process_time() - start) / len(messages) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--registry", type=int, default=0, help="sensors of a generated registry")
    args = parser.parse_args()
    if args.registry < 0 or args.n <= 0:
        parser.error("--registry must be 0 (off) or a number of sensors, --n positive")
    if args.registry:
        found = registry_rate(args.registry)
        print(f"canonical, {args.registry:,} sensors in turn: {min(found):.2f} us/reading "
              f"(rounds: {', '.join(f'{t:.2f}' for t in found)})")  # fmt: skip
        return
    topology = load_topology(ROOT / "tests/fixtures/normalize-city.yaml")
    normalizer = Normalizer(topology)
    messages = [payloads(i) for i in range(args.n)]
    gc.freeze()
    for fmt in ("canonical", "ngsi-v2", "ngsi-ld", "sensorthings", "open311"):
        batch = [m[fmt] for m in messages]
        for raw in batch[:500]:  # warm caches
            normalizer.normalize(raw)
        events = 0
        start = time.perf_counter()
        for raw in batch:
            result = normalizer.normalize(raw)
            assert not result.rejections, result.rejections
            events += len(result.events)
        elapsed = time.perf_counter() - start
        print(
            f"{fmt:13s} {args.n / elapsed:10,.0f} msg/s {events / elapsed:10,.0f} events/s "
            f"{elapsed / events * 1e6:6.2f} us/event"
        )


if __name__ == "__main__":
    main()
