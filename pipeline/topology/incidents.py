"""The ``incidents`` section: how incidents reach the handling units, and who those units are.

Why a section: how often units hear about new evidence, how long a closed incident may
be reopened and how old a unit's update may be are the deployment's call; and the units
that may act on incidents are the deployment's too. Their Ed25519 public keys live in a
separate file the section names (``unit_keys``), so the topology holds no secret and a
key can be rotated without touching the rules; the private keys stay with the units.

The keys file (YAML or JSON)::

    units:
      - id: 310101/urban-management    # the `unit` its updates name
        area: "310101"                 # optional: the area part of the id
        public_key: 3q2+7w...           # base64 of the 32-byte raw Ed25519 public key

``cityops incidents keygen`` makes a key pair and prints the entry.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from pipeline.topology.base import Frozen, Text
from pipeline.topology.durations import Duration
from pipeline.topology.errors import ErrorList

__all__ = ["IncidentsSection", "UnitKey", "check_unit_keys", "read_unit_keys"]

#: A unit id: an area code, optionally followed by ``/`` and the unit's name.
UNIT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9._-]{1,64})?")
#: The largest keys file read (a city has hundreds of units, not millions).
MAX_KEYS_FILE_BYTES = 4 << 20
ED25519_PUBLIC_KEY_BYTES = 32


class IncidentsSection(Frozen):
    """Incident topics and handling units.

    ``evidence_interval``: an incident's city, district and street topics carry an
    evidence-only change at most this often (in event time); every other change (open,
    severity, escalation, state) at once. ``reopen_window``: a unit may reopen a closed
    incident this long after its close. ``max_update_age``: an update whose own ``at`` is
    older than its receive time minus this is refused (``too_old``); this is also how
    long update ids are remembered against replays. ``unit_keys``: the keys file, relative
    to the topology; without one, every update is refused (``unknown_unit``).
    """

    evidence_interval: Duration = Field(default="5m", validate_default=True)
    reopen_window: Duration = Field(default="24h", validate_default=True)
    max_update_age: Duration = Field(default="1d", validate_default=True)
    unit_keys: Text | None = None


@dataclass(frozen=True, slots=True)
class UnitKey:
    """One handling unit: its id, the area it answers for, and its public key."""

    unit: str
    area: str
    public_key: bytes


def read_unit_keys(rel: str, base_dir: Path) -> tuple[dict[str, UnitKey], ErrorList]:
    """The units of a keys file by id, and every problem with it by path."""
    where = "incidents.unit_keys"
    path = base_dir / rel
    try:
        if path.stat().st_size > MAX_KEYS_FILE_BYTES:
            return {}, [(where, f"{rel} is larger than {MAX_KEYS_FILE_BYTES >> 20} MiB")]
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [(where, f"cannot read {path}: {exc}")]
    except yaml.YAMLError as exc:
        return {}, [(where, f"{rel} is not valid YAML: {str(exc)[:200]}")]
    entries = doc.get("units") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return {}, [(where, f"{rel} must hold `units:`, a list of unit entries")]
    keys: dict[str, UnitKey] = {}
    errors: ErrorList = []
    for i, entry in enumerate(entries):
        at = f"{where} ({rel} units[{i}])"
        key, problem = _unit_key(entry)
        if problem is not None:
            errors.append((at, problem))
        elif key is not None and key.unit in keys:
            errors.append((at, f"unit {key.unit!r} is listed twice"))
        elif key is not None:
            keys[key.unit] = key
    return keys, errors


def _unit_key(entry: Any) -> tuple[UnitKey | None, str | None]:
    if not isinstance(entry, Mapping) or set(entry) - {"id", "area", "public_key"}:
        return None, "must be a mapping of id, area (optional) and public_key"
    unit = entry.get("id")
    if not isinstance(unit, str) or not UNIT_ID.fullmatch(unit):
        return None, "id must be an area code, optionally followed by /name"
    area = entry.get("area", unit.split("/", 1)[0])
    area = str(area) if isinstance(area, int) and not isinstance(area, bool) else area
    if not isinstance(area, str) or area != unit.split("/", 1)[0]:
        return None, f"area must be the area part of the id ({unit.split('/', 1)[0]})"
    text = entry.get("public_key")
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        return None, "public_key must be the base64 of a 32-byte Ed25519 public key"
    return UnitKey(unit=unit, area=area, public_key=raw), None


def check_unit_keys(keys: Mapping[str, UnitKey], area_codes: Collection[str]) -> ErrorList:
    """Every unit answers for an area the topology knows."""
    return [
        ("incidents.unit_keys", f"unit {key.unit!r}: unknown area {key.area!r}")
        for key in keys.values()
        if key.area not in area_codes
    ]
