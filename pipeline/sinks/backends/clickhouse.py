"""The server store: any ClickHouse >= 23 over HTTP(S) through clickhouse-connect.

Connection parameters come from the caller (the CLI/worker reads them from the
environment names the topology gives); the password is a ``SecretStr`` that is only
unwrapped when the client is built and is never logged or put in a message.

Facts that shape this module (shared/notes/performance-and-sinks.md):
- one reusable insert context with explicit column types: no ``DESCRIBE`` per insert;
- clickhouse-connect may retry an insert once after a dropped connection, so every insert
  carries the batch's ``insert_deduplication_token``;
- the client connects lazily (first call), so building a store never blocks, and a server
  that is down at start-up surfaces as ``StoreUnavailable`` like any later outage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from pipeline.models import AggregateRow, AreaLevel, StoreRow
from pipeline.sinks.base import StoreError, StoreUnavailable, check_token
from pipeline.sinks.clickhouse_cluster import cluster_statements
from pipeline.sinks.clickhouse_sql import (
    COLUMN_TYPES,
    COLUMNS,
    INCIDENT_COLUMNS,
    INCIDENTS_TABLE,
    TABLE,
    check_identifier,
    create_statements,
    incidents_to_columns,
    query_parameters,
    row_from_mapping,
    rows_to_columns,
    select_sql,
)
from pipeline.sinks.incidents import IncidentRow
from pipeline.sinks.registry import Backend, StoreOverrides, setting

logger = logging.getLogger(__name__)

#: ClickHouse error codes that clear by themselves: TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_
#: QUERIES, SOCKET_TIMEOUT, NETWORK_ERROR, MEMORY_LIMIT_EXCEEDED, TOO_MANY_PARTS, READONLY
#: replica, KEEPER_EXCEPTION, ALL_CONNECTION_TRIES_FAILED.
_RETRYABLE_CODES = frozenset({159, 202, 209, 210, 241, 252, 242, 999, 279})


class ClickHouseStore:
    """AggregateStore on a ClickHouse server at ``url`` (http:// or https://)."""

    def __init__(
        self,
        url: str,
        *,
        database: str = "cityops",
        user: str = "default",
        password: SecretStr | None = None,
        verify: bool = True,
        ca_cert: str | None = None,
        connect_timeout: float = 10.0,
        send_receive_timeout: float = 60.0,
        compress: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"ClickHouse URL must be http(s)://host[:port], got scheme {parts.scheme!r}"
            raise StoreError(msg)
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (8443 if self.secure else 8123)
        # A password in the URL would leak into logs: take it out and prefer the parameter.
        self.user = parts.username or user
        self._password = password or SecretStr(parts.password or "")
        self.database = check_identifier(database)
        self.verify = verify
        self.ca_cert = ca_cert
        self.connect_timeout = connect_timeout
        self.send_receive_timeout = send_receive_timeout
        self.compress = compress
        self._client: Any = None
        self._context: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return (
            f"ClickHouseStore(url='{scheme}://{self.host}:{self.port}', "
            f"database={self.database!r}, user={self.user!r}, password=**********)"
        )

    # -- connection ----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._closed:
            msg = "store is closed"
            raise StoreError(msg)
        if self._client is None:
            import clickhouse_connect  # noqa: TID251 - the one module that talks to the server

            try:
                self._client = clickhouse_connect.get_client(
                    host=self.host,
                    port=self.port,
                    username=self.user,
                    password=self._password.get_secret_value(),
                    secure=self.secure,
                    verify=self.verify,
                    ca_cert=self.ca_cert,
                    connect_timeout=self.connect_timeout,
                    send_receive_timeout=self.send_receive_timeout,
                    compress=self.compress,
                    tz_mode="aware",
                    client_name="cityops",
                    autogenerate_session_id=False,
                )
            except Exception as exc:
                raise self._translate(exc, "connect") from exc
            logger.info("connected to ClickHouse %s (%s)", self, self._client.server_version)
        return self._client

    def _insert_context(self, client: Any) -> Any:
        if self._context is None:
            self._context = client.create_insert_context(
                table=TABLE,
                database=self.database,
                column_names=list(COLUMNS),
                column_type_names=list(COLUMN_TYPES),
                column_oriented=True,
                settings={},
            )
        return self._context

    def _translate(self, exc: Exception, action: str) -> StoreError:
        from clickhouse_connect.driver.exceptions import (  # noqa: TID251
            DatabaseError,
            OperationalError,
        )

        msg = f"ClickHouse {action} failed: {exc}"
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, OperationalError):
            return StoreUnavailable(msg)
        if isinstance(exc, DatabaseError) and getattr(exc, "code", None) in _RETRYABLE_CODES:
            return StoreUnavailable(msg, retry_after=1.0)
        if isinstance(exc, OSError):
            return StoreUnavailable(msg)
        return StoreError(msg)

    # -- the protocol --------------------------------------------------------------------

    def init(self, *, cluster: str | None = None) -> None:
        """Create the database, the aggregates and the incidents tables (idempotent); with
        ``cluster``, replicated tables and Distributed tables over them on every node of
        that cluster (``clickhouse_cluster``)."""
        statements = (
            cluster_statements(self.database, cluster)
            if cluster is not None
            else create_statements(self.database)
        )
        with self._lock:
            client = self._connect()
            for statement in statements:
                try:
                    client.command(statement)
                except Exception as exc:
                    raise self._translate(exc, "init") from exc

    def write(self, rows: Sequence[StoreRow], *, dedup_token: str) -> None:
        """Insert ``rows`` in one Native block guarded by ``dedup_token``."""
        if not rows:
            return
        token = check_token(dedup_token)
        columns = rows_to_columns(rows)
        with self._lock:
            client = self._connect()
            try:
                context = self._insert_context(client)
                context.settings["insert_deduplication_token"] = token
                client.insert(data=columns, context=context)
            except Exception as exc:
                if self._context is not None:
                    self._context.data = None
                raise self._translate(exc, "insert") from exc

    def write_incidents(self, rows: Sequence[IncidentRow], *, dedup_token: str) -> None:
        """Insert incident versions in one Native block guarded by ``dedup_token``."""
        if not rows:
            return
        token = check_token(dedup_token)
        with self._lock:
            client = self._connect()
            try:
                client.insert(
                    table=INCIDENTS_TABLE,
                    database=self.database,
                    data=incidents_to_columns(rows),
                    column_names=[name for name, _ in INCIDENT_COLUMNS],
                    column_type_names=[kind for _, kind in INCIDENT_COLUMNS],
                    column_oriented=True,
                    settings={"insert_deduplication_token": token},
                )
            except Exception as exc:
                raise self._translate(exc, "insert") from exc

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
        parameters = query_parameters(area_code, metric, since, until, level)
        with self._lock:
            client = self._connect()
            try:
                result = client.query(select_sql(self.database, level), parameters=parameters)
                records = list(result.named_results())
            except Exception as exc:
                raise self._translate(exc, "query") from exc
        return [row_from_mapping(record) for record in records]

    def close(self) -> None:
        """Close the HTTP pool; further calls raise StoreError."""
        with self._lock:
            self._closed = True
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None
                    self._context = None


def open_clickhouse(
    section: Any, environ: Mapping[str, str], overrides: StoreOverrides
) -> ClickHouseStore:
    """The store ``sinks.clickhouse`` describes, with the credentials it names from ``environ``.

    ``sinks.clickhouse`` gives the *names* of the variables holding the URL, user and
    password (``url_env``, ``user_env``, ``password_env``) and the database. The URL scheme
    decides TLS (https); CITYOPS_CLICKHOUSE_VERIFY=0 turns certificate checks off and
    CITYOPS_CLICKHOUSE_CA_CERT names a CA bundle. Nothing is connected yet.
    """
    url_env = str(setting(section, "url_env", "CITYOPS_CLICKHOUSE_URL"))
    url = environ.get(url_env)
    if not url:
        msg = f"sinks.store is clickhouse but {url_env} is not set"
        raise StoreError(msg)
    user_env = str(setting(section, "user_env", "CITYOPS_CLICKHOUSE_USER"))
    password_env = str(setting(section, "password_env", "CITYOPS_CLICKHOUSE_PASSWORD"))
    verify = environ.get("CITYOPS_CLICKHOUSE_VERIFY", "1").lower() not in ("0", "false", "no")
    return ClickHouseStore(
        url,
        database=str(setting(section, "database", "cityops")),
        user=environ.get(user_env, "default"),
        password=SecretStr(environ.get(password_env, "")),
        verify=verify,
        ca_cert=environ.get("CITYOPS_CLICKHOUSE_CA_CERT") or None,
    )


BACKEND = Backend(name="clickhouse", open=open_clickhouse)
