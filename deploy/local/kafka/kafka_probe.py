#!/usr/bin/env python3
"""Ask a Kafka broker what it is, speaking the wire protocol with the standard library only.

Why: `kafka.sh start` must know when the broker really serves clients (a metadata request
answers with at least one broker), and the tests must prove the broker is Apache Kafka and
not a stand-in (its ApiVersions v3 answer lists KRaft-only APIs and feature levels).
A secured listener (SASL_SSL) is reached over TLS with the given CA, then authenticated
with SCRAM (RFC 5802, as Kafka speaks it) before the request.
Runs before any virtualenv exists, so it imports nothing outside the standard library.

    python3 kafka_probe.py ready 127.0.0.1:9092 --timeout 60
    python3 kafka_probe.py versions 127.0.0.1:9092
    python3 kafka_probe.py ready 127.0.0.1:9092 --cafile ca.pem --user admin \
        --password-file admin.password
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

API_VERSIONS = 18
METADATA = 3
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
CLIENT_ID = b"cityops-probe"
_SCRAM_DIGESTS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class ProbeError(Exception):
    """The broker did not answer as a Kafka broker would."""


@dataclass
class ApiVersionsAnswer:
    """What ApiVersions v3 reports: API key -> (min, max) and feature ranges."""

    api_keys: dict[int, tuple[int, int]]
    supported_features: dict[str, tuple[int, int]] = field(default_factory=dict)
    finalized_features: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Security:
    """How to reach a secured listener: TLS trusting `cafile`, then SCRAM as `username`
    (no username: TLS only)."""

    cafile: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: str = "SCRAM-SHA-512"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            msg = "truncated response"
            raise ProbeError(msg)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int8(self) -> int:
        return int(struct.unpack(">b", self.take(1))[0])

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self) -> str | None:
        length = self.int16()
        return None if length < 0 else self.take(length).decode()

    def compact_string(self) -> str:
        return self.take(self.uvarint() - 1).decode()

    def skip_tagged(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def _compact_string(value: bytes) -> bytes:
    return bytes([len(value) + 1]) + value


def exchange(
    address: str, request: bytes, timeout: float, security: Security | None = None
) -> bytes:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        if security is None:
            return _roundtrip(raw, request)
        context = ssl.create_default_context(cafile=security.cafile)
        with context.wrap_socket(raw, server_hostname=host) as sock:
            if security.username is not None:
                _scram(sock, security)
            return _roundtrip(sock, request)


def _roundtrip(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(struct.pack(">i", len(request)) + request)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    return _recv_exact(sock, size)


def _header(api_key: int, version: int, correlation: int) -> bytes:
    """A non-flexible request header (v1): key, version, correlation id, client id."""
    return struct.pack(">hhih", api_key, version, correlation, len(CLIENT_ID)) + CLIENT_ID


def _sasl_authenticate(sock: socket.socket, payload: bytes) -> str:
    """One SaslAuthenticate v1 round: send our SCRAM message, return the broker's."""
    request = _header(SASL_AUTHENTICATE, 1, 3) + struct.pack(">i", len(payload)) + payload
    reader = _Reader(_roundtrip(sock, request))
    reader.int32()  # correlation id
    error, message = reader.int16(), reader.string()
    if error:
        msg = f"SASL authentication failed (error {error}: {message})"
        raise ProbeError(msg)
    return reader.take(reader.int32()).decode()


def _scram(sock: socket.socket, security: Security) -> None:
    """Authenticate with SCRAM-SHA-256/512 over SaslHandshake v1 + SaslAuthenticate v1."""
    digest = _SCRAM_DIGESTS.get(security.mechanism)
    if digest is None or security.username is None or security.password is None:
        msg = f"SCRAM needs a user, a password and one of {sorted(_SCRAM_DIGESTS)}"
        raise ProbeError(msg)
    mechanism = security.mechanism.encode()
    handshake = _header(SASL_HANDSHAKE, 1, 2) + struct.pack(">h", len(mechanism)) + mechanism
    reader = _Reader(_roundtrip(sock, handshake))
    reader.int32()  # correlation id
    if error := reader.int16():
        msg = f"the broker refused the SASL mechanism {security.mechanism} (error {error})"
        raise ProbeError(msg)
    name = security.username.replace("=", "=3D").replace(",", "=2C")
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    first_bare = f"n={name},r={nonce}"
    server_first = _sasl_authenticate(sock, f"n,,{first_bare}".encode())
    fields = dict(item.split("=", 1) for item in server_first.split(",") if "=" in item)
    if not fields.get("r", "").startswith(nonce) or "s" not in fields or "i" not in fields:
        msg = "the broker's first SCRAM message is malformed"
        raise ProbeError(msg)
    salted = hashlib.pbkdf2_hmac(
        digest, security.password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", digest)
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.new(digest, client_key).digest(), auth_message, digest)
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))
    server_final = _sasl_authenticate(sock, f"{without_proof},p={proof.decode()}".encode())
    server_key = hmac.digest(salted, b"Server Key", digest)
    expected = base64.b64encode(hmac.digest(server_key, auth_message, digest)).decode()
    if not hmac.compare_digest(server_final, f"v={expected}"):
        msg = "the broker's SCRAM signature does not match: not the broker we trust"
        raise ProbeError(msg)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            msg = "connection closed mid-response"
            raise ProbeError(msg)
        chunks += chunk
    return bytes(chunks)


def api_versions(
    address: str, timeout: float = 5.0, security: Security | None = None
) -> ApiVersionsAnswer:
    """Send ApiVersions v3 (flexible header v2) and parse keys and feature levels."""
    correlation = 7
    header = _header(API_VERSIONS, 3, correlation) + b"\x00"  # header tagged fields
    body = _compact_string(b"cityops-probe") + _compact_string(b"1") + b"\x00"
    reader = _Reader(exchange(address, header + body, timeout, security))
    if reader.int32() != correlation:
        msg = "correlation id mismatch"
        raise ProbeError(msg)
    error = reader.int16()
    if error:
        msg = f"ApiVersions error code {error}"
        raise ProbeError(msg)
    keys: dict[int, tuple[int, int]] = {}
    for _ in range(reader.uvarint() - 1):
        key, low, high = reader.int16(), reader.int16(), reader.int16()
        reader.skip_tagged()
        keys[key] = (low, high)
    reader.int32()  # throttle time
    answer = ApiVersionsAnswer(api_keys=keys)
    for _ in range(reader.uvarint()):
        tag, size = reader.uvarint(), reader.uvarint()
        tagged = _Reader(reader.take(size))
        if tag in (0, 2):
            target = answer.supported_features if tag == 0 else answer.finalized_features
            for _ in range(tagged.uvarint() - 1):
                name = tagged.compact_string()
                target[name] = (tagged.int16(), tagged.int16())
                tagged.skip_tagged()
    return answer


def metadata_brokers(
    address: str, timeout: float = 5.0, security: Security | None = None
) -> list[tuple[int, str, int]]:
    """Send Metadata v4 for no topics; return the brokers the cluster advertises."""
    correlation = 11
    body = struct.pack(">ib", 0, 0)  # empty topic list, no auto-creation
    reader = _Reader(exchange(address, _header(METADATA, 4, correlation) + body, timeout, security))
    if reader.int32() != correlation:
        msg = "correlation id mismatch"
        raise ProbeError(msg)
    reader.int32()  # throttle time
    brokers = []
    for _ in range(reader.int32()):
        node, host, port = reader.int32(), reader.string() or "", reader.int32()
        reader.string()  # rack
        brokers.append((node, host, port))
    return brokers


def wait_ready(address: str, timeout: float, security: Security | None = None) -> float:
    """Poll until a metadata request lists a broker; return the seconds it took."""
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < timeout:
        try:
            if metadata_brokers(address, timeout=2.0, security=security):
                return time.monotonic() - started
        except (OSError, ProbeError) as exc:
            last_error = exc
        time.sleep(0.25)
    msg = f"no metadata answer from {address} within {timeout:.0f}s (last error: {last_error})"
    raise ProbeError(msg)


def _security(args: argparse.Namespace) -> Security | None:
    if args.cafile is None:
        if args.user is not None:
            msg = "--user needs --cafile: credentials are never sent in clear text"
            raise ProbeError(msg)
        return None
    password = None
    if args.user is not None:
        if args.password_file is None:
            msg = "--user needs --password-file"
            raise ProbeError(msg)
        password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    return Security(args.cafile, args.user, password, args.mechanism)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["ready", "versions", "metadata"])
    parser.add_argument("address", help="host:port of the broker")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--cafile", help="TLS: the CA that signed the broker's certificate")
    parser.add_argument("--user", help="SCRAM user (with --cafile: SASL_SSL)")
    parser.add_argument("--password-file", type=Path, help="the SCRAM user's password")
    parser.add_argument("--mechanism", default="SCRAM-SHA-512", choices=sorted(_SCRAM_DIGESTS))
    args = parser.parse_args(argv)
    try:
        security = _security(args)
        if args.command == "ready":
            print(f"ready after {wait_ready(args.address, args.timeout, security):.1f}s")
        elif args.command == "versions":
            answer = api_versions(args.address, args.timeout, security)
            print(
                json.dumps(
                    {
                        "api_keys": len(answer.api_keys),
                        "supported_features": answer.supported_features,
                        "finalized_features": answer.finalized_features,
                    }
                )
            )
        else:
            print(json.dumps(metadata_brokers(args.address, args.timeout, security)))
    except (OSError, ProbeError) as exc:
        print(f"kafka_probe: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
