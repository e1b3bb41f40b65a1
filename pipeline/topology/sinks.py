"""The ``sinks`` section: where aggregates are stored (embedded chDB or a ClickHouse server).

Why: a topology is shared and versioned, so it never holds credentials: the ClickHouse
sink names the environment variables that hold them, and literal credentials are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pipeline.topology.base import EnvName, Frozen, Text
from pipeline.topology.errors import Loc, raise_issues

__all__ = ["ChdbSink", "ClickHouseSink", "Sinks"]


class ChdbSink(Frozen):
    """The embedded ClickHouse engine: data directory and database."""

    path: Text = "chdb"
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "cityops"


_LITERAL_CREDENTIALS = {
    "url": "url_env",
    "user": "user_env",
    "username": "user_env",
    "password": "password_env",
    "passwd": "password_env",
    "secret": "password_env",
    "token": "password_env",
}


class ClickHouseSink(Frozen):
    """A ClickHouse server; credentials only as *names* of environment variables."""

    url_env: EnvName = "CITYOPS_CLICKHOUSE_URL"
    user_env: EnvName = "CITYOPS_CLICKHOUSE_USER"
    password_env: EnvName = "CITYOPS_CLICKHOUSE_PASSWORD"  # noqa: S105  # a variable name
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "cityops"

    @model_validator(mode="before")
    @classmethod
    def _no_literal_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            issues: list[tuple[Loc, str]] = [
                (
                    (key,),
                    f"credentials never go into a topology; name the environment "
                    f"variable that holds it with {_LITERAL_CREDENTIALS[key]}",
                )
                for key in data
                if isinstance(key, str) and key.lower() in _LITERAL_CREDENTIALS
            ]
            raise_issues(issues)
        return data


class Sinks(Frozen):
    """Where aggregates go: the embedded engine (default) or a server."""

    store: Literal["chdb", "clickhouse"] = "chdb"
    chdb: ChdbSink = ChdbSink()
    clickhouse: ClickHouseSink = ClickHouseSink()
