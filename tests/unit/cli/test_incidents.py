"""`cityops incidents`: keys, the contract page, and clear refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.rules.units import load_private_key, public_key_text
from tests.support.paths import DEMO

runner = CliRunner()


def test_keygen_writes_a_private_key_and_prints_its_keys_file_entry(tmp_path: Path) -> None:
    out = tmp_path / "unit.pem"
    result = runner.invoke(app, ["incidents", "keygen", "--unit", "310101/x", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    entry = yaml.safe_load("units:\n" + result.output)["units"][0]
    assert entry == {
        "id": "310101/x",
        "public_key": public_key_text(load_private_key(out.read_bytes())),
    }
    again = runner.invoke(app, ["incidents", "keygen", "--unit", "310101/x", "--out", str(out)])
    assert again.exit_code == 2 and "not overwriting" in again.output


def test_contract_check_tells_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "incidents.md"
    page.write_text("# x\n<!-- generated: refusals -->\nold\n<!-- end generated -->\n", "utf-8")
    stale = runner.invoke(app, ["incidents", "contract", "--doc", str(page), "--check"])
    assert stale.exit_code == 1 and "stale" in stale.output
    assert runner.invoke(app, ["incidents", "contract", "--doc", str(page)]).exit_code == 0
    assert "`unsigned`" in page.read_text(encoding="utf-8")
    fresh = runner.invoke(app, ["incidents", "contract", "--doc", str(page), "--check"])
    assert fresh.exit_code == 0, fresh.output


def test_an_action_without_a_key_or_a_worker_fails_in_one_line(tmp_path: Path) -> None:
    args = ["incidents", "ack", "inc-0", "-t", str(DEMO), "--unit", "310101"]
    result = runner.invoke(app, args, env={"CITYOPS_UNIT_KEY_FILE": ""})
    assert result.exit_code == 2 and "--key" in result.output
    broken = tmp_path / "k.pem"
    broken.write_text("not a key", encoding="utf-8")
    result = runner.invoke(app, [*args, "--key", str(broken)])
    assert result.exit_code == 2 and "not an Ed25519 private key" in " ".join(result.output.split())
    listed = runner.invoke(app, ["incidents", "list", "--worker", "http://127.0.0.1:9"])
    assert listed.exit_code == 1 and "no answer from a worker" in " ".join(listed.output.split())
