"""Handling units for tests: key pairs, a keys file, and signed update records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import orjson
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.rules.units import generate_private_key, public_key_text, sign

KEYS_FILE = "units.keys.yaml"


class Units:
    """A key pair per unit id, written as a keys file next to a topology."""

    def __init__(self, units: Iterable[str]) -> None:
        self.keys: dict[str, Ed25519PrivateKey] = {u: generate_private_key() for u in units}

    def write(self, directory: Path) -> Path:
        """The keys file (public keys only) in `directory`."""
        doc = {"units": [{"id": u, "public_key": public_key_text(k)} for u, k in self.keys.items()]}
        path = directory / KEYS_FILE
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return path

    def signed(self, value: bytes, unit: str) -> tuple[bytes, list[tuple[str, bytes]]]:
        """`value` and the headers that sign it as `unit`."""
        return value, [sign(value, self.keys[unit])]


def update_value(
    update_id: str,
    incident_id: str,
    action: str,
    unit: str,
    at: datetime,
    note: str | None = None,
) -> bytes:
    """An update record's value bytes."""
    return orjson.dumps({
        "update_id": update_id, "incident_id": incident_id, "action": action, "unit": unit,
        "at": at.isoformat(), "note": note,
    })  # fmt: skip
