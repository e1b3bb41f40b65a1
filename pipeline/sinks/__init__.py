"""Aggregate stores: one protocol, an embedded chDB backend and a ClickHouse server backend.

Backends import their engine lazily (chDB costs ~0.5 s to import), so importing this
package is cheap.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from pipeline.sinks.base import (
    AGGREGATES_DDL,
    AggregateStore,
    StoreError,
    StoreUnavailable,
    dedup_token_for,
)

__all__ = [
    "AGGREGATES_DDL",
    "AggregateStore",
    "StoreError",
    "StoreUnavailable",
    "dedup_token_for",
    "open_store",
]


def open_store(
    sinks: Any, environ: Mapping[str, str], *, chdb_path: str | Path | None = None
) -> AggregateStore:
    """The store a topology's ``sinks`` section names, built from ``environ``.

    ``sinks`` is ``Topology.sinks`` (store: chdb | clickhouse; chdb.path; clickhouse.url_env,
    user_env, password_env, database). ``chdb_path`` (``Settings.chdb_path``, env
    CITYOPS_CHDB_PATH) overrides ``sinks.chdb.path``, so the worker and the CLI open the same
    directory. A relative chDB path is taken relative to the current directory. For a server
    the URL scheme decides TLS (https); CITYOPS_CLICKHOUSE_VERIFY=0 turns certificate checks
    off and CITYOPS_CLICKHOUSE_CA_CERT names a CA bundle.
    """
    kind = str(_get(sinks, "store", "chdb"))
    if kind == "chdb":
        from pipeline.sinks.chdb import ChdbStore

        section = _get(sinks, "chdb", None)
        path = Path(chdb_path) if chdb_path else Path(str(_get(section, "path", "data/chdb")))
        return ChdbStore(path, database=str(_get(section, "database", "cityops")))
    if kind == "clickhouse":
        from pipeline.sinks.clickhouse import ClickHouseStore

        section = _get(sinks, "clickhouse", None)
        url_env = str(_get(section, "url_env", "CITYOPS_CLICKHOUSE_URL"))
        url = environ.get(url_env)
        if not url:
            msg = f"sinks.store is clickhouse but {url_env} is not set"
            raise StoreError(msg)
        user_env = str(_get(section, "user_env", "CITYOPS_CLICKHOUSE_USER"))
        password_env = str(_get(section, "password_env", "CITYOPS_CLICKHOUSE_PASSWORD"))
        verify = environ.get("CITYOPS_CLICKHOUSE_VERIFY", "1").lower() not in ("0", "false", "no")
        return ClickHouseStore(
            url,
            database=str(_get(section, "database", "cityops")),
            user=environ.get(user_env, "default"),
            password=SecretStr(environ.get(password_env, "")),
            verify=verify,
            ca_cert=environ.get("CITYOPS_CLICKHOUSE_CA_CERT") or None,
        )
    msg = f"unknown store {kind!r} (expected chdb or clickhouse)"
    raise StoreError(msg)


def _get(section: Any, name: str, default: Any) -> Any:
    """Read a field from a pydantic model or a mapping (the topology section's shape)."""
    if section is None:
        return default
    if isinstance(section, Mapping):
        value = section.get(name, default)
    else:
        value = getattr(section, name, default)
    return default if value is None else value
