"""Alert runbook links are absolute, point at existing sections of docs/operations.md, and
follow the configured base URL in the rules and in their promtool tests alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy.prometheus import generate
from deploy.runbooks import (
    DEFAULT_BASE_URL,
    RunbookError,
    anchor,
    base_url,
    runbook_url,
    sections,
)


def _annotations(text: str) -> dict[str, str]:
    """Alert name -> runbook_url of every rule."""
    rules = yaml.safe_load(text)
    return {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _expected(text: str) -> set[tuple[str, str]]:
    """(alert, runbook_url) of every expected alert of the promtool tests."""
    tests = yaml.safe_load(text)
    return {
        (case["alertname"], alert["exp_annotations"]["runbook_url"])
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        for alert in case.get("exp_alerts", [])
    }


def test_the_committed_files_are_what_the_generator_writes() -> None:
    for name, text in generate.rendered(DEFAULT_BASE_URL).items():
        assert (generate.PROMETHEUS_DIR / name).read_text(encoding="utf-8") == text, name


def test_every_alert_links_an_existing_runbook_section() -> None:
    links = _annotations((generate.PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    assert len(links) == 8
    for alert, url in links.items():
        assert url == f"{DEFAULT_BASE_URL}#{alert.lower()}"
        assert anchor(alert) in sections(), alert


def test_another_base_url_changes_the_rules_and_their_tests(tmp_path: Path) -> None:
    base = "https://wiki.city.example/ops/cityops.md"
    assert generate.main(["--out", str(tmp_path), "--runbook-base-url", base]) == 0
    rules = _annotations((tmp_path / "alerts.yml").read_text(encoding="utf-8"))
    assert rules == {alert: runbook_url(alert, base) for alert in rules}
    expected = _expected((tmp_path / "alerts_test.yml").read_text(encoding="utf-8"))
    assert expected and all(url == runbook_url(alert, base) for alert, url in expected)
    assert generate.main(["--check", "--out", str(tmp_path), "--runbook-base-url", base]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1  # the default differs


def test_a_relative_base_or_a_stray_link_is_refused() -> None:
    assert generate.main(["--runbook-base-url", "docs/operations.md", "--check"]) == 2
    with pytest.raises(RunbookError, match="absolute"):
        base_url("https://x.example/ops.md#top")
    assert base_url(None, {"CITYOPS_RUNBOOK_BASE_URL": "https://x.example/o.md"}) == (
        "https://x.example/o.md"
    )
    with pytest.raises(RunbookError, match="line 2"):
        generate.render('groups:\n  runbook_url: "x"\n', DEFAULT_BASE_URL)
    assert anchor('Dashboard "cityops / Pipeline health"') == "dashboard-cityops--pipeline-health"
