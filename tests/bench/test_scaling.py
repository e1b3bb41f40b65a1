"""The scaling part's medians: rates, and the workers' CPU a reading and cores (no broker:
the runs are canned)."""

from __future__ import annotations

from typing import Any

from bench.__main__ import _scaling

# (rate, CPU us a reading, cores) of each run, by workers; one two-worker run timed by
# polling, so it has no CPU figure.
RUNS = {
    1: [(20_000.0, 48.0, 0.96), (22_000.0, 46.0, 1.01), (21_000.0, 47.0, 0.99)],
    2: [(30_000.0, 45.0, 1.35), (33_000.0, None, None), (31_000.0, 44.0, 1.36)],
}


def joined(workers: int, run: int) -> dict[str, Any]:
    rate, cpu, cores = RUNS[workers][run]
    return {"readings_per_s": rate, "cpu_us_per_reading": cpu, "worker_cores": cores}


def test_scaling_reports_median_rates_cpu_and_cores() -> None:
    results: dict[str, Any] = {}
    got = _scaling(joined, 3, results)
    assert got is not None and "errors" not in results
    assert got["runs"] == {
        "one_worker": [20_000.0, 22_000.0, 21_000.0],
        "two_workers": [30_000.0, 33_000.0, 31_000.0],
    }
    assert got["ratio_to_one_worker"] == 31_000.0 / 21_000.0
    assert got["cpu_us_per_reading"] == {"one_worker": 47.0, "two_workers": 44.5}
    assert got["worker_cores"] == {"one_worker": 0.99, "two_workers": 1.355}


def test_scaling_without_cpu_figures_reports_none() -> None:
    def polled(workers: int, run: int) -> dict[str, Any]:
        return {"readings_per_s": RUNS[workers][run][0], "cpu_us_per_reading": None}

    got = _scaling(polled, 2, {})
    assert got is not None
    assert got["cpu_us_per_reading"] == {"one_worker": None, "two_workers": None}
    assert got["worker_cores"] == {"one_worker": None, "two_workers": None}
