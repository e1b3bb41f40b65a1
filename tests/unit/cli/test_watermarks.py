"""`cityops watermarks`: one clear line when no worker answers; the tables it prints."""

from __future__ import annotations

from rich.console import Console

from pipeline.cli.watermarks import areas_table, partitions_table
from pipeline.engine.watermarks import watermarks_report
from pipeline.topology import load_topology
from tests.support.paths import DEMO
from tests.support.worker import free_port
from tests.unit.aggregates.test_windows import MINUTE, T_BASE, _from, state
from tests.unit.cli.test_scripting import cityops, one_error_line


def test_an_unreachable_worker_is_one_line() -> None:
    port = free_port()
    result = cityops("watermarks", "-t", str(DEMO), "--worker", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"no answer from a worker at http://127.0.0.1:{port}")


def test_a_bad_worker_url_is_one_line() -> None:
    result = cityops("watermarks", "-t", str(DEMO), "--worker", "ftp://somewhere")
    assert result.exit_code == 2
    assert "--worker must be an http(s) URL" in one_error_line(result)


def test_the_tables_name_the_sources_behind_and_idle() -> None:
    s = state()
    s.add(_from("slow", T_BASE, 1.0), False, None)
    s.add(_from("fast", T_BASE + 2 * MINUTE, 1.0), False, None)
    doc = watermarks_report([("310101", s)], load_topology(DEMO))
    console = Console(width=200, record=True)
    console.print(areas_table(doc, "http://w:6066"))
    console.print(partitions_table(doc))
    text = console.export_text()
    assert "310101" in text and "Huangpu" in text and "slow" in text
    assert "2026-11-28T07:59:30Z" in text and "30s" in text  # slow's newest minus 30 s
