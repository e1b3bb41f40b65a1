"""The incidents section: its durations, and the unit keys file it names (checked at load)."""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.topology import TopologyError, parse_topology
from tests.support.units import KEYS_FILE, Units
from tests.unit.rules.detect_world import BASE, HUANGPU

KEY = base64.b64encode(b"k" * 32).decode()


def load(tmp_path: Path, keys: Any, **section: Any) -> Any:
    (tmp_path / KEYS_FILE).write_text(keys if isinstance(keys, str) else repr(keys), "utf-8")
    data = copy.deepcopy(BASE)
    data["incidents"] = {"unit_keys": KEYS_FILE, **section}
    return parse_topology(data, tmp_path)


def test_defaults_and_a_valid_keys_file(tmp_path: Path) -> None:
    units = Units([f"{HUANGPU}/urban-management", HUANGPU])
    units.write(tmp_path)
    data = {**copy.deepcopy(BASE), "incidents": {"unit_keys": KEYS_FILE, "reopen_window": "2h"}}
    topology = parse_topology(data, tmp_path)
    section = topology.incidents
    assert (section.evidence_interval, section.reopen_window, section.max_update_age) == (
        timedelta(minutes=5), timedelta(hours=2), timedelta(days=1),
    )  # fmt: skip
    keys = topology.unit_keys()
    assert sorted(keys) == [HUANGPU, f"{HUANGPU}/urban-management"]
    assert keys[HUANGPU].area == HUANGPU and len(keys[HUANGPU].public_key) == 32
    assert parse_topology(copy.deepcopy(BASE), tmp_path).unit_keys() == {}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("units: [{id: '310101', public_key: 'not base64!'}]", "32-byte Ed25519"),
        (f"units: [{{id: '310101', public_key: '{base64.b64encode(b'k' * 31).decode()}'}}]",
         "32-byte Ed25519"),
        (f"units: [{{id: '999999', public_key: '{KEY}'}}]", "unknown area '999999'"),
        (f"units: [{{id: '310101/a', area: '310104', public_key: '{KEY}'}}]", "area part"),
        (f"units: [{{id: '310101', public_key: '{KEY}'}}, {{id: '310101', public_key: '{KEY}'}}]",
         "listed twice"),
        (f"units: [{{id: 'a b', public_key: '{KEY}'}}]", "id must be an area code"),
        (f"units: [{{id: '310101', public_key: '{KEY}', private_key: 'x'}}]", "mapping of id"),
        ("units: {}", "list of unit entries"),
        ("units: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_keys_file_is_refused_at_load(tmp_path: Path, keys: str, message: str) -> None:
    with pytest.raises(TopologyError) as refused:
        load(tmp_path, keys)
    assert any(path.startswith("incidents.unit_keys") and message in text
               for path, text in refused.value.errors), refused.value.errors  # fmt: skip


@pytest.mark.parametrize(
    ("section", "where"),
    [({"unit_keys": "nope.yaml"}, "incidents.unit_keys"),
     ({"evidence_interval": "soon"}, "incidents.evidence_interval"),
     ({"keys": "x"}, "incidents.keys")],
)  # fmt: skip
def test_a_missing_keys_file_or_a_bad_setting_is_refused(
    tmp_path: Path, section: dict[str, str], where: str
) -> None:
    with pytest.raises(TopologyError) as refused:
        parse_topology({**copy.deepcopy(BASE), "incidents": section}, tmp_path)
    assert where in {path for path, _ in refused.value.errors}, refused.value.errors
