"""A CLI scripts can trust: --json on every table, whole output when piped, --version,
completion, one-line errors with --debug for the traceback, right progress bars."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

import pipeline.cli.progress as progress_module
from pipeline.cli import app
from pipeline.cli.progress import Bar
from tests.support.paths import DEMO, SHANGHAI
from tests.unit.rules.incident_world import make

runner = CliRunner()

#: every command that prints a table, as its words on the command line
TABLE_COMMANDS = [
    ("topology", "show"),
    ("topology", "validate"),
    ("topics", "list"),
    ("dry-run",),
    ("audit", "verify"),
    ("aggregates", "query"),
    ("incidents", "list"),
    ("incidents", "show"),
]


def cityops(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "", **(env or {})})


def one_error_line(result: Result) -> str:
    """The single line a failure printed on stderr (and nothing on stdout)."""
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- --json


def _command(words: tuple[str, ...]) -> Any:
    import typer.main

    command: Any = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    return command


@pytest.mark.parametrize("words", TABLE_COMMANDS, ids=" ".join)
def test_every_table_command_has_json(words: tuple[str, ...]) -> None:
    options = {opt for param in _command(words).params for opt in param.opts}
    assert "--json" in options
    assert "--topology" in options or words[0] == "incidents"


def test_topology_show_and_validate_json() -> None:
    result = cityops("topology", "show", "-t", str(SHANGHAI), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["id"] == "shanghai"
    topics = doc["tables"]["Topics (241)"]  # 10 shared, 16 district, 215 street
    assert len(topics) == 241 and topics[0]["topic"] == "cityops.shanghai.sensors.raw"
    rules = {row["rule"]: row for row in doc["tables"]["Rules"]}
    assert rules["pm25"]["levels"] == "blue:75 yellow:115 orange:150 red:250"
    result = cityops("topology", "validate", "--json", "-t", str(DEMO))
    assert json.loads(result.stdout)["ok"] is True


def test_dry_run_and_audit_json(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    made = cityops(
        "simulate", "-t", str(DEMO), "--rate", "100", "--duration", "20s", "--speedup", "30",
        "--seed", "3", "--start", "2026-01-01T00:00:00Z", "--episodes-per-hour", "30",
        "--output", str(events),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    out = tmp_path / "out"
    result = cityops("dry-run", "-t", str(DEMO), "-i", str(events), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["input_records"] == len(events.read_text().splitlines())
    assert summary["out"] == str(out)
    audit = next(out.glob("*incidents.audit.jsonl"))
    result = cityops("audit", "verify", "-t", str(DEMO), "--from-file", str(audit), "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is True and verdict["problems"] == []
    tampered = tmp_path / "tampered.jsonl"
    lines = audit.read_text().splitlines()
    tampered.write_text("\n".join([*lines, "{not json"]) + "\n")
    result = cityops("audit", "verify", "-t", str(DEMO), "--from-file", str(tampered), "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is False and verdict["problems"][0]["problem"] == "malformed"


@pytest.fixture
def incidents_worker() -> Iterator[str]:
    """An HTTP server answering /incidents like a worker, with one incident."""
    incident = make().model_dump(mode="json")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/incidents/"):
                body: dict[str, Any] = {"incident": incident}
            else:
                body = {"incidents": [incident], "total": 1, "next": None}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_incidents_list_and_show_json(incidents_worker: str) -> None:
    result = cityops("incidents", "list", "--worker", incidents_worker, "--json")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert json.loads(line)["incident_id"] == "inc-0123456789abcdef"
    result = cityops("incidents", "show", "inc-0123456789abcdef", "--worker", incidents_worker,
                     "--json")  # fmt: skip
    assert json.loads(result.stdout)["rule_id"] == "pm25-count"


# --------------------------------------------------------------------------- piped output


def test_piped_tables_are_whole() -> None:
    result = cityops("topology", "show", "-t", str(SHANGHAI))
    assert result.exit_code == 0, result.output
    assert "blue:75 yellow:115 orange:150 red:250" in result.stdout
    assert "cityops.shanghai.incidents.district.310101" in result.stdout
    assert not any(line.rstrip().endswith("…") for line in result.stdout.splitlines())


# --------------------------------------------------------------------------- --version etc.


def test_version_and_completion() -> None:
    result = cityops("--version")
    assert (result.exit_code, result.stdout) == (0, f"cityops {version('cityops')}\n")

    # Bash's script and its answers, through the completion variable: with shellingham
    # installed, `--show-completion` takes no shell name and detects the shell from the
    # process tree, so it said "Shell sh not supported" under make's /bin/sh.
    def complete(**env: str) -> Result:
        return runner.invoke(app, [], env={"COLUMNS": "", **env}, prog_name="cityops")

    script = complete(_CITYOPS_COMPLETE="source_bash")
    assert script.exit_code == 0 and "_CITYOPS_COMPLETE=complete_bash" in script.stdout
    words = complete(_CITYOPS_COMPLETE="complete_bash", COMP_WORDS="cityops top", COMP_CWORD="1")
    assert words.exit_code == 0 and words.stdout.split() == ["topology", "topics"]


def test_validate_takes_the_topology_by_option_or_position() -> None:
    by_option = cityops("topology", "validate", "-t", str(DEMO))
    by_position = cityops("topology", "validate", str(DEMO))
    assert by_option.exit_code == by_position.exit_code == 0
    assert by_option.stdout == by_position.stdout
    assert "no topology" in one_error_line(cityops("topology", "validate"))
    assert "two topologies" in one_error_line(
        cityops("topology", "validate", str(SHANGHAI), "-t", str(DEMO))
    )


# --------------------------------------------------------------------------- errors


def test_tail_refuses_an_unknown_topic_at_once() -> None:
    result = cityops("tail", "nosuch", "-t", str(DEMO))
    assert result.exit_code == 2
    assert one_error_line(result).startswith("unknown topic 'nosuch': give a kind (raw_sensors,")


def test_tail_with_the_broker_down_is_one_line() -> None:
    port = free_port()
    result = cityops("tail", "incidents.city", "-t", str(DEMO), "--bootstrap", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    message = one_error_line(result)
    assert message.startswith(
        f"cannot read cityops.demo.incidents.city from Kafka at 127.0.0.1:{port}"
    )


def test_worker_with_a_bad_bootstrap_is_one_line() -> None:
    result = cityops("worker", "-t", str(DEMO), "--bootstrap", "h:xx")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "--bootstrap (or CITYOPS_KAFKA_BOOTSTRAP_SERVERS): 'h:xx' is not host:port "
        "(a port is a number from 1 to 65535)"
    )


def test_worker_on_a_busy_web_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cityops("worker", "-t", str(DEMO), "--web-port", str(port))
    assert result.exit_code == 1
    message = one_error_line(result)
    assert message.startswith(f"web port 127.0.0.1:{port} cannot be used (")
    assert message.endswith("choose another with --web-port or CITYOPS_WEB_PORT")


@pytest.mark.parametrize("speedup", ["1e308", "inf", "nan", "0"])
def test_simulate_with_an_absurd_speedup_is_one_line(tmp_path: Path, speedup: str) -> None:
    result = cityops("simulate", "-t", str(DEMO), "--speedup", speedup, "--duration", "2s",
                     "--output", str(tmp_path / "s.jsonl"))  # fmt: skip
    assert result.exit_code == 2
    assert one_error_line(result) == "--speedup must be positive and at most 1e+06"


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> str:
        msg = "boom\nsecond line"
        raise RuntimeError(msg)

    monkeypatch.setattr("pipeline.cli.topology.summary", broken)
    result = cityops("topology", "validate", "-t", str(DEMO))
    assert result.exit_code == 1
    assert one_error_line(result) == "RuntimeError: boom (--debug shows the traceback)"
    result = cityops("--debug", "topology", "validate", "-t", str(DEMO))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


# --------------------------------------------------------------------------- progress


def test_a_bar_never_passes_its_total_and_ends_full(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(progress_module, "err_console", Console(file=screen, force_terminal=True))
    with Bar("events", 14400, refresh=1) as bar:
        for count in range(1, 15146):
            bar.update(count)
            assert bar.total is not None and bar.completed <= bar.total
    assert (bar.completed, bar.total) == (15145, 15145)
    assert "15145/15145" in screen.getvalue()
    assert "15145/14400" not in screen.getvalue()


def test_dry_run_shows_progress_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    line = (
        '{"sensor_id": "aq-1", "metric": "pm25", "value": 12, "unit": "ug/m3", '
        '"observed_at": "2026-01-01T00:00:%02dZ"}\n'
    )
    events.write_text("".join(line % (n % 60) for n in range(3000)))
    args = ("dry-run", "-t", str(DEMO), "-i", str(events), "-o", str(tmp_path / "out"), "--json")
    piped = cityops(*args)
    assert piped.exit_code == 0, piped.output
    assert piped.stderr == ""  # stderr is not a terminal: no bar
    screen = io.StringIO()
    monkeypatch.setattr(progress_module, "err_console", Console(file=screen, force_terminal=True))
    assert cityops(*args).exit_code == 0
    assert "records" in screen.getvalue() and "3000/3000" in screen.getvalue()
