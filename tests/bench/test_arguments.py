"""`python -m bench` refuses a run count it cannot use, before it touches the broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT


@pytest.mark.parametrize("pairs", ["0", "-2", "three"])
def test_scaling_pairs_must_be_a_positive_whole_number(pairs: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scaling-pairs", pairs],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--scaling-pairs: must be a whole number of at least 1, got '{pairs}'" in done.stderr
