"""The chaos suite's session: one deterministic stream and one dry run for every test,
and the report table at the end (`make chaos`)."""

from __future__ import annotations

import pytest

from tests.support.chaos import report
from tests.support.chaos.compare import Outcome, dry_run_outcome
from tests.support.chaos.stream import ChaosInput, make_input


@pytest.fixture(scope="session")
def chaos_stream(tmp_path_factory: pytest.TempPathFactory) -> ChaosInput:
    """About 50,000 simulated events (fixed seed and start) and their dry run."""
    return make_input(tmp_path_factory.mktemp("chaos-stream"))


@pytest.fixture(scope="session")
def chaos_expected(chaos_stream: ChaosInput) -> Outcome:
    """The dry run's incidents, audit chain and aggregates."""
    return dry_run_outcome(chaos_stream.dry_run, chaos_stream.base, chaos_stream.until)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not report.ROWS:
        return
    report.write()
    terminalreporter.section("chaos report")
    terminalreporter.write_line(report.table())
    terminalreporter.write_line(f"(also in {report.REPORT})")
