"""A real Prometheus server for tests: scrape given targets every second, query it, stop it.

Usage::

    with PrometheusServer(["127.0.0.1:6066"], tmp_path) as prom:
        prom.wait_for_targets_up()
        samples = prom.query('sum(rate(cityops_events_in_total[1m]))')

Debian's `prometheus` package provides the binary (installed by .ci/run). The server
listens on a free loopback port, keeps its TSDB under the given directory, and is
terminated (then killed if it must be) on exit. Its log goes to `<dir>/prometheus.log`
and is included in every error this helper raises.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

PROMETHEUS_BIN = "prometheus"
PROMTOOL_BIN = "promtool"
JOB = "cityops-worker"

Sample = dict[str, Any]  # {"metric": {label: value}, "value": [ts, "str value"]}


class PrometheusError(RuntimeError):
    """Prometheus did not start, did not get ready, or answered a query with an error."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        msg = f"{name} not found: install Debian's prometheus package (apt-get install prometheus)"
        raise PrometheusError(msg)
    return path


def scrape_config(
    targets: Sequence[str],
    *,
    job: str = JOB,
    interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> dict[str, Any]:
    """The configuration the test server runs: one job, static targets, a fast interval."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


class PrometheusServer:
    """A Prometheus process scraping `targets`; use as a context manager."""

    def __init__(
        self,
        targets: Sequence[str],
        workdir: Path,
        *,
        job: str = JOB,
        interval: str = "1s",
        rule_files: Sequence[Path] = (),
        port: int | None = None,
    ) -> None:
        self.targets = list(targets)
        self.workdir = workdir
        self.job = job
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self._config = scrape_config(targets, job=job, interval=interval, rule_files=rule_files)
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Write the config, start the server and wait until /-/ready answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self._config), encoding="utf-8")
        command = [
            find_binary(PROMETHEUS_BIN),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait(self._ready, timeout, "Prometheus did not become ready")

    def stop(self, timeout: float = 20.0) -> None:
        """TERM, then KILL if it has not exited within `timeout` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- HTTP API -----------------------------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET `/api/v1/<path>` and return its `data`, raising PrometheusError on an error."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            msg = f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
            raise PrometheusError(msg)
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        """Instant query: the result samples (a scalar result becomes one unlabelled sample)."""
        data = self.api("query", {"query": expr})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_values(self, expr: str) -> dict[str, float]:
        """Instant query as {label set rendered as text: value}, convenient in asserts."""
        out: dict[str, float] = {}
        for sample in self.query(expr):
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample["metric"].items()))
            out[labels] = float(sample["value"][1])
        return out

    def targets_health(self) -> dict[str, str]:
        """{scrape URL: health} of the active targets ("up", "down", "unknown")."""
        data = self.api("targets", {"state": "active"})
        return {t["scrapeUrl"]: t["health"] for t in data["activeTargets"]}

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts the server's rule evaluation currently holds (pending or firing)."""
        return list(self.api("alerts")["alerts"])

    def wait_for_targets_up(self, timeout: float = 60.0) -> None:
        """Until every target has been scraped successfully at least once."""

        def all_up() -> bool:
            health = self.targets_health()
            return len(health) == len(self.targets) and all(h == "up" for h in health.values())

        self._wait(all_up, timeout, "targets not up")

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = ""
    ) -> None:
        """Poll `predicate` every 0.5 s until true; PrometheusError (with the log) on timeout."""
        self._wait(predicate, timeout, what or "condition not met")

    # -- internals ----------------------------------------------------------------------------

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                msg = f"Prometheus exited with {self._process.returncode}\n{self.log()}"
                raise PrometheusError(msg)
            try:
                if predicate():
                    return
            except PrometheusError:
                pass
            time.sleep(0.5)
        msg = f"{what} within {timeout:.0f}s\n{self.log()}"
        raise PrometheusError(msg)

    def log(self) -> str:
        """The last 4 KB of the server's log."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4096:]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool with `args`; the caller checks returncode and output."""
    return subprocess.run(
        [find_binary(PROMTOOL_BIN), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
