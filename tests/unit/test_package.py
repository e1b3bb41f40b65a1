"""The package root: the one version every entry point reports, cheap to import."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from pipeline import cityops_version
from tests.support.paths import ROOT


def test_the_version_is_the_installed_package_s() -> None:
    assert cityops_version() == version("cityops")


def test_the_cli_and_the_worker_report_the_package_s_version() -> None:
    import pipeline.cli
    import pipeline.engine.worker.app

    assert pipeline.cli.cityops_version is cityops_version
    assert pipeline.engine.worker.app.cityops_version is cityops_version


def test_reading_the_version_imports_no_faust_and_nothing_of_the_package() -> None:
    code = (
        "import sys; from pipeline import cityops_version; cityops_version(); "
        "print(sorted(m for m in sys.modules if m.startswith(('pipeline.', 'faust', 'typer'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
