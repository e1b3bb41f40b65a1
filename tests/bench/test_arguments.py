"""`python -m bench` refuses a run count it cannot use, before it touches the broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT


@pytest.mark.parametrize("option", ["--scaling-pairs", "--saturated-runs"])
@pytest.mark.parametrize("count", ["0", "-2", "three"])
def test_run_counts_must_be_positive_whole_numbers(option: str, count: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", option, count],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{option}: must be a whole number of at least 1, got '{count}'" in done.stderr
