"""`cityops aggregates query`: argument checks, and reading through a worker's endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from pipeline.cli.aggregates import aggregates_app
from pipeline.cli.common import console
from pipeline.models import AggregateRow, AreaLevel
from tests.support.paths import DEMO as DEMO_PATH

DEMO = str(DEMO_PATH)
runner = CliRunner()
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)

ROWS = [
    AggregateRow(
        window_start=T0 + timedelta(minutes=i), window_end=T0 + timedelta(minutes=i + 1),
        level=AreaLevel.district, area_code="310101", metric="pm25",
        count=2 + i, sum=100.0 + i, min=10.0, max=90.5, mean=(100.0 + i) / (2 + i), breaches=i,
    )
    for i in range(2)
]  # fmt: skip


class FakeWorker:
    """A stand-in for the worker's /aggregates endpoint: records queries, answers canned."""

    def __init__(self, status: int = 200) -> None:
        self.queries: list[dict[str, list[str]]] = []
        self.status = status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                owner.queries.append({"path": [parts.path], **parse_qs(parts.query)})
                if owner.status == 200:
                    body: dict[str, Any] = {"rows": [r.model_dump(mode="json") for r in ROWS]}
                else:
                    body = {"error": "store down"}
                data = json.dumps(body).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables one row per line, whatever the test runner's terminal."""
    monkeypatch.setattr(console, "width", 200)


@pytest.fixture
def worker() -> Iterator[FakeWorker]:
    with FakeWorker() as fake:
        yield fake


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(aggregates_app, ["query", "--topology", DEMO, *args])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_reads_through_the_worker_as_a_table(worker: FakeWorker) -> None:
    code, output = invoke("--area", "310101", "--metric", "pm25", "--since", "2h",
                          "--worker", worker.url)  # fmt: skip
    assert code == 0, output
    assert worker.queries == [{
        "path": ["/aggregates"], "area": ["310101"], "metric": ["pm25"],
        "level": ["district"], "since": ["7200.0"],
    }]  # fmt: skip
    start = f"{T0:%Y-%m-%d %H:%M:%S} – {T0 + timedelta(minutes=1):%H:%M:%S}"
    assert f"{start} 2 100 10 90.5 50 0" in output
    assert "3 101 10 90.5 33.6667 1" in output
    assert "2 windows" in output and f"read from worker {worker.url}" in output


def test_json_lines(worker: FakeWorker) -> None:
    result = runner.invoke(
        aggregates_app,
        ["query", "--topology", DEMO, "--area", "310101", "--metric", "pm25", "--json",
         "--worker", worker.url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [AggregateRow.model_validate_json(line) for line in lines] == ROWS


def test_city_level_is_asked_for_by_a_city_code(worker: FakeWorker) -> None:
    code, _ = invoke("--area", "310000", "--metric", "pm25", "--worker", worker.url)
    assert code == 0
    assert worker.queries[0]["level"] == ["city"]
    assert worker.queries[0]["since"] == ["3600.0"]  # the default: 1h


def test_a_worker_error_is_a_runtime_failure() -> None:
    with FakeWorker(status=503) as fake:
        code, output = invoke("--area", "310101", "--metric", "pm25", "--worker", fake.url)
    assert code == 1
    assert "answered 503" in output and "store down" in output


def test_an_explicit_worker_that_does_not_answer_is_a_runtime_failure() -> None:
    with FakeWorker() as fake:
        url = fake.url
    code, output = invoke("--area", "310101", "--metric", "pm25", "--worker", url)
    assert code == 1
    assert f"no worker at {url}" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--area", "310101", "--metric", "pm25", "--since", "yesterday"],
         "--since: 'yesterday' is not a duration"),
        (["--area", "310101", "--metric", "pm25", "--since", "0s"],
         "--since: must be longer than zero"),
        (["--area", "999999", "--metric", "pm25"], "--area: unknown area '999999'"),
        (["--area", "310101", "--metric", "ozone"], "--metric: unknown metric 'ozone' (known:"),
        (["--area", "310101", "--metric", "pm25", "--level", "grid"],
         "--level: 'grid' is not one of street, district, city"),
        (["--area", "310101", "--metric", "pm25", "--level", "street"],
         "--level: area 310101 is a district, not a street"),
        (["--area", "310101", "--metric", "pm25", "--worker", "ftp://x"],
         "--worker must be an http(s) URL"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
