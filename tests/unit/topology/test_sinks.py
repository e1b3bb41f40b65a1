"""The sinks section: no literal credentials, environment variable names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.topology.demo_edits import errors_after


@pytest.mark.parametrize("key", ["password", "user", "url"])
def test_literal_credentials_are_refused(key: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sinks"]["clickhouse"][key] = "hunter2"

    [(path, message)] = errors_after(mutate)
    assert path == f"sinks.clickhouse.{key}"
    assert message.startswith("credentials never go into a topology; name the environment variable")
    assert "hunter2" not in message


def test_env_names_must_look_like_env_names() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sinks"]["clickhouse"]["password_env"] = "my password"  # noqa: S105

    [(path, message)] = errors_after(mutate)
    assert path == "sinks.clickhouse.password_env"
    assert message.startswith("must match pattern")
