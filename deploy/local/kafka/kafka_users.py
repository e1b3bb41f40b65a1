#!/usr/bin/env python3
"""Create a SCRAM user, or give it a new password, on a secured broker, as an admin.

Why not Kafka's ConfigCommand: it takes the password on its command line (visible to every
local user while it runs) and costs a JVM start. This speaks AlterUserScramCredentials v0
(KIP-554) over TLS after an admin's SCRAM login (kafka_probe.py), with the standard library
only: the new password comes from a file and only its salted form (PBKDF2, 8192 rounds,
a fresh salt per mechanism) leaves this process. Both SCRAM-SHA-256 and -512 are set, so
the old password works with neither afterwards.

    python3 kafka_users.py 127.0.0.1:9092 --cafile ca.pem --admin admin \\
        --admin-password-file admin.password --user unit-310101 --password-file new.password
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import struct
import sys
from pathlib import Path

from kafka_probe import ProbeError, Security, exchange

ALTER_USER_SCRAM_CREDENTIALS = 51
ITERATIONS = 8192
#: Kafka's ScramMechanism type codes and the hash each uses.
MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
CLIENT_ID = b"cityops-users"


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _compact(data: bytes) -> bytes:
    return _uvarint(len(data) + 1) + data


def upsert_request(user: str, password: str, mechanism: str, correlation: int = 5) -> bytes:
    """AlterUserScramCredentials v0 (flexible, header v2): no deletions, one upsertion with
    a fresh salt. One mechanism per request: the broker refuses a user twice in one."""
    code, digest = MECHANISMS[mechanism]
    header = struct.pack(">hhih", ALTER_USER_SCRAM_CREDENTIALS, 0, correlation, len(CLIENT_ID))
    body = bytearray(header + CLIENT_ID + b"\x00")  # header tagged fields
    body += _uvarint(1)  # deletions: an empty compact array
    body += _uvarint(2)  # upsertions: one
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, ITERATIONS)
    body += _compact(user.encode()) + struct.pack(">bi", code, ITERATIONS)
    body += _compact(salt) + _compact(salted) + b"\x00"
    body += b"\x00"  # request tagged fields
    return bytes(body)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _skip_tagged(data: bytes, pos: int) -> int:
    count, pos = _read_uvarint(data, pos)
    for _ in range(count):
        _, pos = _read_uvarint(data, pos)
        size, pos = _read_uvarint(data, pos)
        pos += size
    return pos


def errors_of(response: bytes) -> list[str]:
    """The per-user errors of an AlterUserScramCredentials v0 response (empty: success)."""
    pos = _skip_tagged(response, 4)  # correlation id, then the header's tagged fields
    pos += 4  # throttle time
    results, pos = _read_uvarint(response, pos)
    errors = []
    for _ in range(results - 1):
        size, pos = _read_uvarint(response, pos)
        user = response[pos : pos + size - 1].decode()
        pos += size - 1
        code = struct.unpack(">h", response[pos : pos + 2])[0]
        size, pos = _read_uvarint(response, pos + 2)
        message = response[pos : pos + size - 1].decode() if size else None
        pos = _skip_tagged(response, pos + max(size - 1, 0))
        if code:
            errors.append(f"{user}: error {code} ({message})")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of the broker's SASL_SSL listener")
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--admin", required=True, help="a super user's name")
    parser.add_argument("--admin-password-file", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True, help="the new password")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        admin_password = args.admin_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        if not password:
            msg = f"{args.password_file} is empty"
            raise ProbeError(msg)
        security = Security(args.cafile, args.admin, admin_password)
        errors = []
        for mechanism in MECHANISMS:
            request = upsert_request(args.user, password, mechanism)
            errors += errors_of(exchange(args.address, request, args.timeout, security))
    except (OSError, ProbeError) as exc:
        print(f"kafka_users: {exc}", file=sys.stderr)
        return 1
    if errors:
        print(f"kafka_users: the broker refused: {'; '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
