"""Authenticated handling units: signed updates, checked against the topology's unit keys.

Why signatures: the updates topic is the one input a unit writes, and ``unit`` is a
string the sender chooses; without proof of who sent an update, whoever can write to the
topic could claim the city's code and act on everything. Each unit holds an Ed25519
private key; the topology's keys file lists the public keys (see
:mod:`pipeline.topology.incidents`).

What is signed: the record's value bytes exactly as sent, so no canonical form is needed
and any Kafka client in any language can sign; the signature (base64, 64 bytes raw) goes
in the record header ``cityops-signature``. The signed bytes carry ``update_id``, which
the lifecycle remembers, so a replayed record is a duplicate; they also carry ``at``, which
must be recent, so an id forgotten after ``max_update_age`` cannot be replayed either.

Checks in order, each a :class:`~pipeline.models.Rejection` with its reason: the unit is
listed (``unknown_unit``), the record is signed (``unsigned``), the signature verifies
with that unit's key (``bad_signature``), then ``at`` is within the allowed skew and age
(``clock_skew``, ``too_old``). Authority over the incident's area is the lifecycle's
check (``unit_outside_area``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from pipeline.models import IncidentUpdate, Rejection, RejectReason
from pipeline.topology import Topology
from pipeline.topology.incidents import UnitKey

__all__ = [
    "SIGNATURE_HEADER",
    "authenticate",
    "check_sent_at",
    "generate_private_key",
    "load_private_key",
    "private_key_pem",
    "public_key_text",
    "sign",
]

SIGNATURE_HEADER = "cityops-signature"


def sign(value: bytes, private_key: Ed25519PrivateKey) -> tuple[str, bytes]:
    """The signature header of an update record's value."""
    return SIGNATURE_HEADER, base64.b64encode(private_key.sign(value))


def generate_private_key() -> Ed25519PrivateKey:
    """A new unit key pair."""
    return Ed25519PrivateKey.generate()


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (what ``openssl genpkey`` writes too)."""
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM; ``ValueError`` for anything else."""
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        msg = "not an Ed25519 private key"
        raise ValueError(msg)
    return key


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The base64 raw public key, as the keys file lists it."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def authenticate(
    update: IncidentUpdate, raw: bytes, headers: Sequence[tuple[str, bytes]], topology: Topology
) -> UnitKey | Rejection:
    """The unit that provably sent ``raw`` (the record's value), or why it is refused."""
    key = topology.unit_keys().get(update.unit)
    if key is None:
        detail = f"unit {update.unit!r} is not listed in the topology's unit keys"
        return Rejection(reason=RejectReason.unknown_unit, detail=detail)
    signatures = [value for name, value in headers if name == SIGNATURE_HEADER]
    if not signatures:
        detail = f"no {SIGNATURE_HEADER} header: updates must be signed by their unit"
        return Rejection(reason=RejectReason.unsigned, detail=detail)
    if len(signatures) > 1 or not _verifies(key.public_key, signatures[0], raw):
        detail = f"the signature does not verify with the key of unit {update.unit!r}"
        return Rejection(reason=RejectReason.bad_signature, detail=detail)
    return key


def _verifies(public_key: bytes, signature: bytes, raw: bytes) -> bool:
    try:
        decoded = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(decoded, raw)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check_sent_at(
    update: IncidentUpdate, received: datetime, topology: Topology
) -> Rejection | None:
    """Refuse an update whose own time is too far from when the pipeline received it."""
    if update.at > received + topology.event_time.max_clock_skew:
        detail = (
            f"at {update.at.isoformat()} is later than its receipt {received.isoformat()} "
            f"plus the allowed clock skew"
        )
        return Rejection(reason=RejectReason.clock_skew, detail=detail)
    if update.at < received - topology.incidents.max_update_age:
        detail = (
            f"at {update.at.isoformat()} is older than incidents.max_update_age before its "
            f"receipt {received.isoformat()}"
        )
        return Rejection(reason=RejectReason.too_old, detail=detail)
    return None
