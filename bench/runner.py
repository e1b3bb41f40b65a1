"""A cityops worker in its own process for the benchmark, its peak memory and its CPU.

Same pattern as tests/support/worker.py (own topic prefix, group, web port, state and
chDB directories), kept here so the benchmark does not import the test suite.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size of a live process (VmHWM), MB; None when unreadable."""
    try:
        import psutil  # type: ignore[import-not-found,import-untyped,unused-ignore]  # optional

        info = psutil.Process(pid).memory_full_info()
        peak = getattr(info, "peak_wset", None)  # Windows only; Linux falls through
        if peak:
            return float(peak) / 2**20
    except Exception:  # noqa: BLE001, S110  # psutil missing or no peak: use /proc
        pass
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def status_mb(pid: int, field: str) -> float | None:
    """One memory line of /proc/<pid>/status (e.g. RssAnon, RssFile), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ProcessSampler(threading.Thread):
    """A process's CPU time and the peak of its anonymous resident memory (RssAnon),
    sampled every 0.1 s.

    Why anonymous memory beside VmHWM: VmHWM counts file pages too, and the embedded
    store's library (chDB, 530 MB on disk) leaves about 340 MB of its code resident in
    every worker that loads it; those pages are mapped from disk, shared and reclaimable.
    Anonymous memory is what the worker's own data (registry, states, batches) takes.

    Why CPU time as a series: a run is timed by its records (`Progress.first_output_time`
    to `done_time`), and the worker's CPU over exactly that stretch says what a reading
    costs it, whatever else the shared cores were doing (`cpu_between`)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb: float | None = None
        self.file_mb: float | None = None
        self.cpu: list[tuple[float, float]] = []
        """(wall time, s since the epoch; CPU seconds used so far), in time order."""
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.1):
            used = cpu_seconds(self.pid)
            anon = status_mb(self.pid, "RssAnon")
            if anon is None or used is None:
                return
            self.cpu.append((time.time(), used))
            if self.peak_mb is None or anon > self.peak_mb:
                self.peak_mb = anon
                self.file_mb = status_mb(self.pid, "RssFile")

    def stop(self) -> None:
        self._stop.set()


def cpu_between(series: list[tuple[float, float]], start: float, end: float) -> float | None:
    """CPU seconds used from `start` to `end` (wall times), read off a sampled series
    ((time, CPU seconds so far), in time order) by linear interpolation; None unless
    samples bracket both ends."""
    if end < start or not series or series[0][0] > start or series[-1][0] < end:
        return None

    def at(moment: float) -> float:
        index = bisect.bisect_left(series, (moment, -math.inf))
        when, used = series[index]
        if when == moment or index == 0:
            return used
        before, used_before = series[index - 1]
        return used_before + (used - used_before) * (moment - before) / (when - before)

    return at(end) - at(start)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used so far (all threads), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker:
    """`cityops worker` with its own prefix, group id, port and data directories."""

    def __init__(
        self,
        topology: Path,
        bootstrap: str,
        workdir: Path,
        *,
        prefix: str,
        group: str,
        name: str,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.web_port = free_port()
        self.args = [
            python, "-m", "pipeline", "worker",
            "--topology", str(topology), "--bootstrap", bootstrap,
            "--web-port", str(self.web_port), "--data-dir", str(workdir / name),
            "--worker-id", group, "--loglevel", "warning",
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "CITYOPS_TOPIC_PREFIX": prefix,
            "CITYOPS_CHDB_PATH": str(workdir / f"{name}-chdb"),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.sampler: ProcessSampler | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Worker:
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.sampler = ProcessSampler(self.process.pid)
        self.sampler.start()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def raw_partitions_when_ready(self) -> int | None:
        """How many raw partitions the worker's intake reads, once `/readyz` answers 200
        (partitions assigned, tables recovered, intake and store running); else None."""
        url = f"http://127.0.0.1:{self.web_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own worker
                return int(json.loads(answer.read())["assigned"]["raw"])
        except (OSError, ValueError):
            return None  # not ready (503 raises HTTPError, an OSError) or not up yet

    def cpu_share(self) -> float | None:
        """CPU seconds per wall second since start (1.0 = one core busy)."""
        used = cpu_seconds(self.pid) if self.alive() else None
        wall = time.monotonic() - self.started_at
        return None if used is None or wall <= 0 else used / wall

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.pid) if self.alive() else None

    def peak_anon_mb(self) -> tuple[float | None, float | None]:
        """The peak anonymous memory seen so far, and the file pages resident then."""
        if self.sampler is None:
            return None, None
        return self.sampler.peak_mb, self.sampler.file_mb

    def cpu_between(self, start: float, end: float) -> float | None:
        """CPU seconds the worker used from `start` to `end` (s since the epoch)."""
        return None if self.sampler is None else cpu_between(self.sampler.cpu, start, end)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def stop(self, timeout: float = 30.0) -> None:
        """TERM (warm shutdown), then KILL after ``timeout`` seconds."""
        if self.sampler is not None:
            self.sampler.stop()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
