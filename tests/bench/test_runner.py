"""The benchmark reads a worker's CPU over a run's timed stretch off a sampled series."""

from __future__ import annotations

import pytest

from bench.runner import cpu_between

# (wall time, CPU seconds so far): idle until 10.0, then one core busy until 12.0, then
# half a core until 14.0.
SERIES = [(9.0, 1.0), (10.0, 1.0), (11.0, 2.0), (12.0, 3.0), (13.0, 3.5), (14.0, 4.0)]


def test_cpu_between_sample_times() -> None:
    assert cpu_between(SERIES, 10.0, 12.0) == pytest.approx(2.0)
    assert cpu_between(SERIES, 9.0, 14.0) == pytest.approx(3.0)


def test_cpu_between_interpolates_inside_samples() -> None:
    assert cpu_between(SERIES, 10.5, 11.25) == pytest.approx(0.75)
    assert cpu_between(SERIES, 11.5, 13.5) == pytest.approx(0.5 + 0.5 + 0.25)
    assert cpu_between(SERIES, 12.0, 12.0) == pytest.approx(0.0)


def test_cpu_between_refuses_what_the_samples_do_not_cover() -> None:
    assert cpu_between(SERIES, 8.5, 12.0) is None  # starts before the first sample
    assert cpu_between(SERIES, 10.0, 14.5) is None  # ends after the last one
    assert cpu_between(SERIES, 12.0, 11.0) is None  # ends before it starts
    assert cpu_between([], 10.0, 11.0) is None
