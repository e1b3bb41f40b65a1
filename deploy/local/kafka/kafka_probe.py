#!/usr/bin/env python3
"""Ask a Kafka broker what it is, speaking the wire protocol with the standard library only.

Why: `kafka.sh start` must know when the broker really serves clients (a metadata request
answers with at least one broker), and the tests must prove the broker is Apache Kafka and
not a stand-in (its ApiVersions v3 answer lists KRaft-only APIs and feature levels).
Runs before any virtualenv exists, so it imports nothing outside the standard library.

    python3 kafka_probe.py ready 127.0.0.1:9092 --timeout 60
    python3 kafka_probe.py versions 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

API_VERSIONS = 18
METADATA = 3
CLIENT_ID = b"cityops-probe"


class ProbeError(Exception):
    """The broker did not answer as a Kafka broker would."""


@dataclass
class ApiVersionsAnswer:
    """What ApiVersions v3 reports: API key -> (min, max) and feature ranges."""

    api_keys: dict[int, tuple[int, int]]
    supported_features: dict[str, tuple[int, int]] = field(default_factory=dict)
    finalized_features: dict[str, tuple[int, int]] = field(default_factory=dict)


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


def _exchange(address: str, request: bytes, timeout: float) -> bytes:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        return _recv_exact(sock, size)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            msg = "connection closed mid-response"
            raise ProbeError(msg)
        chunks += chunk
    return bytes(chunks)


def api_versions(address: str, timeout: float = 5.0) -> ApiVersionsAnswer:
    """Send ApiVersions v3 (flexible header v2) and parse keys and feature levels."""
    correlation = 7
    header = struct.pack(">hhih", API_VERSIONS, 3, correlation, len(CLIENT_ID)) + CLIENT_ID
    header += b"\x00"  # header tagged fields
    body = _compact_string(b"cityops-probe") + _compact_string(b"1") + b"\x00"
    reader = _Reader(_exchange(address, header + body, timeout))
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


def metadata_brokers(address: str, timeout: float = 5.0) -> list[tuple[int, str, int]]:
    """Send Metadata v4 for no topics; return the brokers the cluster advertises."""
    correlation = 11
    header = struct.pack(">hhih", METADATA, 4, correlation, len(CLIENT_ID)) + CLIENT_ID
    body = struct.pack(">ib", 0, 0)  # empty topic list, no auto-creation
    reader = _Reader(_exchange(address, header + body, timeout))
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


def wait_ready(address: str, timeout: float) -> float:
    """Poll until a metadata request lists a broker; return the seconds it took."""
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < timeout:
        try:
            if metadata_brokers(address, timeout=2.0):
                return time.monotonic() - started
        except (OSError, ProbeError) as exc:
            last_error = exc
        time.sleep(0.25)
    msg = f"no metadata answer from {address} within {timeout:.0f}s (last error: {last_error})"
    raise ProbeError(msg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["ready", "versions", "metadata"])
    parser.add_argument("address", help="host:port of the broker")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "ready":
            print(f"ready after {wait_ready(args.address, args.timeout):.1f}s")
        elif args.command == "versions":
            answer = api_versions(args.address, args.timeout)
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
            print(json.dumps(metadata_brokers(args.address, args.timeout)))
    except (OSError, ProbeError) as exc:
        print(f"kafka_probe: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
