"""The embedded store: ClickHouse's engine in-process (chDB), data in a directory on disk.

Facts that shape this module (shared/notes/performance-and-sinks.md, checked on 26.9):
- chDB runs ONE embedded server per process, bound to the first data directory opened;
  another directory in the same process is refused, and only one process may own a
  directory. So sessions are cached per path here and shared by every store (and the
  test-support HTTP server) in the process; several stores differ by database name.
- chDB's own guard against a second process on a directory is a lock on ``status`` that
  it retries without end ("Cannot lock file .../status ... retrying"). So a process first
  takes an OS lock (``fcntl.flock``) on ``LOCK_FILE`` in the directory and is refused at
  once, with the settings to change, when another process holds it (``claim``).
- Importing chdb costs ~0.3-0.6 s: it is imported lazily, on first use.
- The engine's library maps ~530 MB, and starting the engine reads ~200 MB of it that
  the worker then never runs again; those clean file pages count in its RSS (and in a
  container's memory) until the kernel needs them. Once the store is ready they are
  released (``release_engine_pages``); the inserts fault back the ~50 MB they use.
- Inserts stream RowBinary (``send_insert(..., "RowBinary")``; the encoding, and why not
  Arrow, in ``clickhouse_sql.rows_to_rowbinary``). A streaming insert holds the
  connection, so every call goes through one lock.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.models import AggregateRow, AreaLevel, StoreRow
from pipeline.sinks.base import StoreError, StoreUnavailable, check_token
from pipeline.sinks.clickhouse_sql import (
    INCIDENT_COLUMNS,
    INCIDENTS_TABLE,
    check_identifier,
    create_statements,
    incidents_to_rowbinary,
    insert_sql,
    query_parameters,
    row_from_mapping,
    rows_to_rowbinary,
    select_sql,
)
from pipeline.sinks.incidents import IncidentRow
from pipeline.sinks.registry import Backend, StoreOverrides, setting

_SESSIONS: dict[Path, Any] = {}
_SESSIONS_LOCK = threading.Lock()
#: The lock file in a store directory, and the open descriptors that hold the locks (an
#: flock lasts as long as its descriptor: they stay open for the life of the process).
LOCK_FILE = ".cityops.lock"
_CLAIMS: dict[Path, int] = {}
#: One lock per process: the embedded server is one connection.
ENGINE_LOCK = threading.RLock()

#: Engine errors that go away by themselves: back off and retry.
_RETRYABLE = frozenset(
    {"TOO_MANY_PARTS", "MEMORY_LIMIT_EXCEEDED", "TIMEOUT_EXCEEDED", "TOO_MANY_SIMULTANEOUS_QUERIES"}
)
_ERROR_NAME = re.compile(r"\(([A-Z_]+)\)\s*$")
#: madvise(2) advice: reclaim these pages now (Linux 5.4+; older kernels refuse it).
_MADV_PAGEOUT = 21
_released: list[int] = []  # the bytes released, once per process

log = logging.getLogger(__name__)


def current_path() -> Path | None:
    """The data directory this process's chDB serves, or None before the first session."""
    with _SESSIONS_LOCK:
        return next(iter(_SESSIONS), None)


class StoreInUse(StoreError):
    """Another process holds the embedded store's directory (not retryable: refuse)."""


def claim(path: str | Path) -> Path:
    """Take ``path`` (a chDB data directory) for this process, or raise ``StoreInUse`` at
    once if another process has it. Idempotent within a process; returns the resolved path.

    The lock is ``flock`` on ``LOCK_FILE``: the kernel drops it when the process dies, so
    a killed worker leaves nothing to clean up. The file holds the owner's pid, for the
    error message only.
    """
    resolved = Path(path).expanduser().resolve()
    with _SESSIONS_LOCK:
        if resolved in _CLAIMS:
            return resolved
        try:
            resolved.mkdir(parents=True, exist_ok=True)
            fd = os.open(resolved / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            msg = f"cannot use {resolved} for the embedded store: {exc.strerror or exc}"
            raise StoreError(msg) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                msg = f"cannot lock {resolved / LOCK_FILE}: {exc.strerror or exc}"
                raise StoreError(msg) from exc
            raise StoreInUse(in_use_message(resolved, owner)) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _CLAIMS[resolved] = fd
        return resolved


def in_use_message(path: Path, owner: str) -> str:
    """One line: whose the store is, and the settings that give each worker its own."""
    who = f"another process (pid {owner})" if owner.isdigit() else "another process"
    return (
        f"the embedded chDB store {path} is in use by {who}; chDB allows one process per "
        "directory: give each worker its own CITYOPS_DATA_DIR (or CITYOPS_CHDB_PATH), or "
        "use the ClickHouse server store (sinks.store: clickhouse) for several workers"
    )


def get_session(path: str | Path) -> Any:
    """The process's chDB session on ``path`` (created once; a second path is an error).

    The directory is claimed first (``claim``), so a second process is refused at once
    instead of chDB retrying its own lock without end.
    """
    resolved = Path(path).expanduser().resolve()
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(resolved)
        if session is not None:
            return session
        _refuse_a_second_directory(resolved)
    claim(resolved)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(resolved)
        if session is not None:
            return session
        _refuse_a_second_directory(resolved)
        from chdb import session as chdb_session  # noqa: TID251 - lazy: the import costs ~0.5 s

        try:
            session = chdb_session.Session(str(resolved))  # type: ignore[no-untyped-call]  # untyped library
        except Exception as exc:
            msg = f"cannot open chDB at {resolved}: {exc}"
            raise StoreError(msg) from exc
        _SESSIONS[resolved] = session
        return session


def release_engine_pages(maps: str = "/proc/self/maps") -> int:
    """Ask the kernel to reclaim the resident pages of the engine library's read-only
    mappings (its code and constants, clean file pages); how many bytes of mappings were
    advised (0: not Linux, an old kernel, or chdb not loaded).

    Why: starting the engine touches ~200 MB of its library that the worker does not
    use again; they are dropped only under memory pressure, and until then a worker with
    the full city's 100,000 sensors showed over 600 MB of RSS, a third of it those pages.
    Pages still in use are faulted back on their next use (measured: ~50 MB by a few
    inserts and a query), so this costs a little time once and changes nothing else."""
    module = sys.modules.get("chdb")
    if module is None or module.__file__ is None:
        return 0
    library = os.path.join(os.path.dirname(module.__file__), "_chdb")
    try:
        with open(maps, encoding="utf-8") as lines:
            spans = [
                (int(low, 16), int(high, 16))
                for low, high, perms, path in _mappings(lines)
                if path.startswith(library) and "w" not in perms
            ]
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError, ValueError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for low, high in spans:
        if madvise(low, high - low, _MADV_PAGEOUT) == 0:
            advised += high - low
    log.debug("released the chDB library's start-up pages (%d MB of mappings)", advised >> 20)
    return advised


def _mappings(lines: Iterable[str]) -> Iterator[tuple[str, str, str, str]]:
    """(low, high, perms, path) of each file mapping in /proc/<pid>/maps lines."""
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6:
            low, _, high = fields[0].partition("-")
            yield low, high, fields[1], fields[5].strip()


def _refuse_a_second_directory(resolved: Path) -> None:
    if _SESSIONS:
        other = next(iter(_SESSIONS))
        msg = (
            f"chDB already serves {other} in this process; one process can open only "
            f"one chDB data directory (asked for {resolved})"
        )
        raise StoreError(msg)


def translate_error(exc: Exception, action: str) -> StoreError:
    """Map an engine exception to StoreUnavailable (transient) or StoreError."""
    text = str(exc).strip()
    match = _ERROR_NAME.search(text)
    msg = f"chDB {action} failed: {text}"
    if match and match.group(1) in _RETRYABLE:
        return StoreUnavailable(msg, retry_after=1.0)
    return StoreError(msg)


class ChdbStore:
    """AggregateStore on the embedded engine at ``path`` (database ``database``)."""

    def __init__(self, path: str | Path, *, database: str = "cityops") -> None:
        self.path = Path(path)
        self.database = check_identifier(database)
        self._session: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"ChdbStore(path={str(self.path)!r}, database={self.database!r})"

    def claim(self) -> None:
        """Take the data directory now (a worker at start-up): ``StoreInUse`` at once if
        another process has it, rather than when the first window closes."""
        claim(self.path)

    def _conn(self) -> Any:
        if self._closed:
            msg = "store is closed"
            raise StoreError(msg)
        if self._session is None:
            self._session = get_session(self.path)
        return self._session

    def init(self) -> None:
        """Create the database, the aggregates and the incidents tables (idempotent)."""
        session = self._conn()
        with ENGINE_LOCK:
            for statement in create_statements(self.database):
                try:
                    session.query(statement, "CSV")
                except Exception as exc:
                    raise translate_error(exc, "init") from exc
            if not _released:  # the engine is up and its tables exist: start-up is over
                _released.append(release_engine_pages())

    def write(self, rows: Sequence[StoreRow], *, dedup_token: str) -> None:
        """Insert ``rows`` as one RowBinary stream guarded by ``dedup_token``."""
        if rows:
            self.write_encoded(self.encode(rows), dedup_token=dedup_token)

    def encode(self, rows: Sequence[StoreRow]) -> bytes:
        """The rows as the RowBinary stream `write_encoded` inserts."""
        return rows_to_rowbinary(rows)

    def write_encoded(self, payload: bytes, *, dedup_token: str) -> None:
        """Insert a RowBinary stream made by `encode`, guarded by ``dedup_token``."""
        if not payload:
            return
        token = check_token(dedup_token)
        self._insert(insert_sql(self.database, token), payload)

    def write_incidents(self, rows: Sequence[IncidentRow], *, dedup_token: str) -> None:
        """Insert incident versions as one RowBinary stream guarded by ``dedup_token``."""
        if not rows:
            return
        sql = insert_sql(
            self.database,
            check_token(dedup_token),
            table=INCIDENTS_TABLE,
            columns=[name for name, _ in INCIDENT_COLUMNS],
        )
        self._insert(sql, incidents_to_rowbinary(rows))

    def _insert(self, sql: str, payload: bytes) -> None:
        session = self._conn()
        with ENGINE_LOCK:
            try:
                inserter = session._conn.send_insert(sql, "RowBinary")
                try:
                    inserter.append(payload)
                    inserter.finish()
                except BaseException:
                    inserter.cancel()
                    raise
            except Exception as exc:
                raise translate_error(exc, "insert") from exc

    def query(
        self,
        area_code: str,
        metric: str,
        since: datetime,
        until: datetime,
        level: AreaLevel,
    ) -> list[AggregateRow]:
        """Rows with ``since <= window_start < until``, one per window (FINAL), in time order.

        The city level is rolled up from the district rows (``CITY_ROLLUP_SQL``).
        """
        params = query_parameters(area_code, metric, since, until, level)
        session = self._conn()
        with ENGINE_LOCK:
            try:
                table = session.query(select_sql(self.database, level), "ArrowTable", params=params)
            except Exception as exc:
                raise translate_error(exc, "query") from exc
        return [row_from_mapping(record) for record in table.to_pylist()]

    def close(self) -> None:
        """Forget the session; the process-wide engine stays up for other stores."""
        self._session = None
        self._closed = True


def open_chdb(section: Any, environ: Mapping[str, str], overrides: StoreOverrides) -> ChdbStore:
    """The store ``sinks.chdb`` describes (path, database); ``overrides.chdb_path`` wins.

    The worker and the CLI pass ``Settings.chdb_dir(...)`` as the override: the topology's
    path under CITYOPS_DATA_DIR, or CITYOPS_CHDB_PATH. Without one, a relative path is
    taken relative to the current directory. Nothing is opened yet.
    """
    path = overrides.chdb_path or Path(str(setting(section, "path", "chdb")))
    return ChdbStore(path, database=str(setting(section, "database", "cityops")))


BACKEND = Backend(name="chdb", open=open_chdb)
