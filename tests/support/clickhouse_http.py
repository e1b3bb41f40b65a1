"""ClickHouse's HTTP interface served by the embedded chDB engine, for tests and benchmarks.

Why: the production sink talks to a ClickHouse server through clickhouse-connect, and no
server runs here. This serves the subset of the HTTP interface that clickhouse-connect
1.x uses, unchanged, on top of the engine that *is* ClickHouse:

- ``GET /ping`` -> ``Ok.``;
- queries as the POST body or the ``query`` URL parameter (``query`` + body are joined,
  as the server does), ``param_*`` server-side bind parameters, ``database``;
- connect-time probes (``SELECT version(), timezone()``, ``system.settings``, the Native
  protocol-version probe, which answers "version 0" because chDB writes no block info);
- inserts: ``query=INSERT INTO t (cols) FORMAT Native|Arrow|...`` with the data as the
  body (Content-Length or chunked, optionally lz4/zstd/gzip/deflate encoded), the
  insert settings (``insert_deduplication_token`` ...) forwarded as a SETTINGS clause;
- errors as ClickHouse sends them: a status, ``X-ClickHouse-Exception-Code`` and the
  ``Code: N. DB::Exception: ...`` text;
- Basic or X-ClickHouse-User/Key authentication when a user is configured.

Outages for the retry path: ``fail_next(n, mode)`` fails the next n requests, and
``down(mode)`` every request until ``up()``; mode "503" answers 503 Service Unavailable,
"drop" closes the connection without answering. ``stop()``/``start()`` really close and
reopen the listening socket on the same port (connection refused in between).

chDB allows one data directory per process: the server shares the process's session
(``pipeline.sinks.chdb.get_session``) with any ChdbStore on the same path. Run as
``python -m tests.support.clickhouse_http --path DIR [--port N]`` for a separate process.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import itertools
import json
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipeline.sinks.backends.chdb import ENGINE_LOCK, get_session

#: URL parameters that are part of the protocol, not ClickHouse settings.
_TRANSPORT = frozenset(
    {
        "query", "database", "session_id", "session_timeout", "session_check", "query_id",
        "compress", "decompress", "user", "password", "default_format", "buffer_size",
        "quota_key", "client_protocol_version", "role", "wait_end_of_query",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "enable_http_compression", "cancel_http_readonly_queries_on_client_close",
        "date_time_input_format", "cast_string_to_dynamic_use_inference",
    }
)  # fmt: skip
#: Settings that matter for an INSERT and are forwarded to the engine.
_INSERT_SETTINGS = frozenset(
    {"insert_deduplication_token", "insert_deduplicate", "async_insert", "wait_for_async_insert"}
)
_INSERT = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*(?:\n(.*))?$", re.I | re.S)
_BODY_INSERT = re.compile(rb"^\s*(INSERT\s+INTO\s+.+?\s+FORMAT\s+\w+)[ \t]*\r?\n", re.I | re.S)
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_CODE = re.compile(r"Code:\s*(\d+)\.")
_SETTING_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]*$")
_STATUS_BY_CODE = {60: 404, 81: 404, 62: 400, 516: 401, 497: 403}


class _Refusal(Exception):
    """The simulated outage decided to drop the connection."""


class ClickHouseHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1 speaking ClickHouse HTTP, backed by chDB."""

    def __init__(
        self,
        chdb_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.chdb_path = Path(chdb_path)
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._fail_remaining = 0
        self._fail_mode = "503"
        self._down_mode: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._connections: set[Any] = set()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ClickHouseHTTPServer:
        """Listen (again, on the same port after a stop) and serve in a daemon thread."""
        if self._session is None:
            self._session = get_session(self.chdb_path)
        handler = type("Handler", (_Handler,), {"backend": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="ch-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections: refused until ``start()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ClickHouseHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outages -------------------------------------------------------------------------

    def fail_next(self, count: int, mode: str = "503") -> None:
        """Fail the next ``count`` requests (pings excluded) with ``mode`` ("503" | "drop")."""
        with self._lock:
            self._fail_remaining = count
            self._fail_mode = mode

    def down(self, mode: str = "503") -> None:
        """Fail every request until ``up()``."""
        self._down_mode = mode

    def up(self) -> None:
        """End a ``down()`` outage and any pending ``fail_next``."""
        with self._lock:
            self._down_mode = None
            self._fail_remaining = 0

    @contextmanager
    def outage(self, mode: str = "503") -> Iterator[None]:
        """``with server.outage(): ...`` - down inside the block."""
        self.down(mode)
        try:
            yield
        finally:
            self.up()

    def _outage_mode(self) -> str | None:
        with self._lock:
            if self._down_mode is not None:
                return self._down_mode
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_mode
        return None

    # -- the engine ----------------------------------------------------------------------

    def execute(
        self, query: str, data: bytes | None, params: dict[str, str]
    ) -> tuple[bytes, str, dict[str, int]]:
        """Run one request; returns (body, output format, summary counters)."""
        settings = {
            k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")
        }
        binds = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database")
        insert = _INSERT.match(query)
        with ENGINE_LOCK:
            if database:
                self._session.query(f"USE {database}", "TabSeparated")
            try:
                if insert:
                    statement, fmt, inline = insert.group(1), insert.group(2), insert.group(3)
                    payload = data if data is not None else (inline or "").encode()
                    return self._insert(statement, fmt, payload, settings)
                return self._select(query, binds)
            finally:
                if database:
                    self._session.query("USE default", "TabSeparated")

    def _insert(
        self, statement: str, fmt: str, payload: bytes, settings: dict[str, str]
    ) -> tuple[bytes, str, dict[str, int]]:
        forwarded = [
            f"{k} = '{v}'"
            for k, v in settings.items()
            if k in _INSERT_SETTINGS and _SETTING_VALUE.match(v)
        ]
        if forwarded:
            statement = f"{statement} SETTINGS {', '.join(forwarded)}"
        inserter = self._session._conn.send_insert(statement, fmt)
        try:
            inserter.append(payload)
            result = inserter.finish()
        except BaseException:
            inserter.cancel()
            raise
        written = {"written_rows": result.rows_written, "written_bytes": result.bytes_written}
        return b"", "TabSeparated", written

    def _select(self, query: str, binds: dict[str, str]) -> tuple[bytes, str, dict[str, int]]:
        match = _FORMAT.search(query)
        fmt = match.group(1) if match else "TabSeparated"
        result = self._session.query(query, fmt, params=binds)
        summary = {
            "read_rows": result.rows_read(),
            "read_bytes": result.bytes_read(),
            "result_rows": result.rows_read(),
            "result_bytes": result.size(),
        }
        return bytes(result.bytes() or b""), fmt, summary


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend: ClickHouseHTTPServer
    _ids = itertools.count(1)

    def setup(self) -> None:
        super().setup()
        with self.backend._lock:
            self.backend._connections.add(self.connection)

    def finish(self) -> None:
        with self.backend._lock:
            self.backend._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests read ``backend.requests`` instead."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._handle()

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._handle()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if split.path.rstrip("/") in ("/ping", "/replicas_status"):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self.backend.requests.append((self.command, split.path, params))
        mode = self.backend._outage_mode()
        if mode == "drop":
            self.close_connection = True
            return
        if mode is not None:
            self._reply(
                503, b"Service Unavailable (simulated outage)\n", {"Content-Type": "text/plain"}
            )
            return
        if not self._authorized(params):
            self._error(516, "Code: 516. DB::Exception: default: Authentication failed. "
                        "(AUTHENTICATION_FAILED)")  # fmt: skip
            return
        query = params.get("query", "")
        data: bytes | None = None
        if query and body and _INSERT.match(query):
            data = body
        elif body and (inline := _BODY_INSERT.match(body)):
            # Native inserts put "INSERT ... FORMAT Native\n" in front of the binary block.
            query = f"{query}\n{inline.group(1).decode()}" if query else inline.group(1).decode()
            data = body[inline.end() :]
        elif body:
            query = f"{query}\n{body.decode()}" if query else body.decode()
        if not query.strip():
            self._error(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            return
        started = time.perf_counter_ns()
        try:
            payload, fmt, summary = self.backend.execute(query, data, params)
        except Exception as exc:
            text = str(exc).strip()
            code_match = _CODE.search(text)
            self._error(int(code_match.group(1)) if code_match else 1002, text)
            return
        summary_text = {k: str(v) for k, v in summary.items()}
        summary_text["elapsed_ns"] = str(time.perf_counter_ns() - started)
        headers = {
            "Content-Type": "application/octet-stream"
            if fmt in ("Native", "RowBinary", "Arrow", "ArrowStream", "Parquet")
            else "text/tab-separated-values; charset=UTF-8",
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-test-server",
            "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
            "X-ClickHouse-Summary": json.dumps(summary_text),
        }
        self._reply(200, payload, headers)

    def _authorized(self, params: dict[str, str]) -> bool:
        expected_user = self.backend.user
        if expected_user is None:
            return True
        user = self.headers.get("X-ClickHouse-User") or params.get("user")
        password = self.headers.get("X-ClickHouse-Key") or params.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user == expected_user and password == (self.backend.password or "")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(parts)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decode(raw, self.headers.get("Content-Encoding"))

    def _error(self, code: int, text: str) -> None:
        self._reply(
            _STATUS_BY_CODE.get(code, 500),
            (text + "\n").encode(),
            {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(code)},
        )

    def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


def _decode(raw: bytes, encoding: str | None) -> bytes:
    if not raw or not encoding or encoding == "identity":
        return raw
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(raw))
    if encoding == "zstd":
        from backports import zstd

        return bytes(zstd.decompress(raw))
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    msg = f"unsupported Content-Encoding {encoding}"
    raise ValueError(msg)


def main() -> None:
    """Serve until interrupted (for benchmarks that want the server in its own process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ClickHouseHTTPServer(args.path, port=args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
