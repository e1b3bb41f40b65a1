"""promtool accepts our Prometheus config and alert rules, and the rule unit tests pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import promtool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml", cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8"))
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert firing == alerts
    assert quiet == alerts


def test_rule_tests_catch_a_broken_threshold(tmp_path: Path) -> None:
    """The promtool tests can fail: a raised threshold stops an expected alert firing."""
    shutil.copy(PROMETHEUS_DIR / "alerts_test.yml", tmp_path)
    text = (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")
    broken = text.replace("[10m])) >= 3\n", "[10m])) >= 300\n")
    assert broken != text
    (tmp_path / "alerts.yml").write_text(broken, encoding="utf-8")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "CityopsStoreFailing" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["alerts.yml", "alerts_test.yml", "prometheus.yml"])
def test_yaml_files_parse(name: str) -> None:
    assert isinstance(yaml.safe_load((PROMETHEUS_DIR / name).read_text(encoding="utf-8")), dict)
