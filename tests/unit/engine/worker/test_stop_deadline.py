"""A stop that hangs (a broker that does not answer) ends the worker with status 75."""

from __future__ import annotations

import subprocess
import sys
import time

from pipeline.engine.worker.failure import EXIT_STOPPED_MID_BATCH

HANGING_STOP = """
import logging, sys, time
logging.basicConfig(stream=sys.stderr)
from pipeline.engine.worker.failure import exit_if_stop_hangs
exit_if_stop_hangs(0.3)
time.sleep(30)  # a stop that waits on the broker forever
"""

QUICK_STOP = """
from pipeline.engine.worker.failure import exit_if_stop_hangs
exit_if_stop_hangs(5.0)  # armed, and the stop finishes first: the timer is a daemon
"""


def test_a_stop_that_hangs_exits_with_status_75_after_the_deadline() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGING_STOP], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == EXIT_STOPPED_MID_BATCH == 75
    assert time.monotonic() - began < 15
    assert "the stop did not finish within 0 s" in done.stderr or "within" in done.stderr
    assert "replayed by the next worker" in done.stderr


def test_a_stop_that_finishes_in_time_keeps_its_own_status() -> None:
    done = subprocess.run([sys.executable, "-c", QUICK_STOP], capture_output=True, timeout=20)
    assert done.returncode == 0
