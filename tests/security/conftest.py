"""The secured broker (SASL_SSL, SCRAM, ACLs enforced), started once for the session by
`KAFKA_SECURITY=sasl_ssl deploy/local/kafka/kafka.sh start`: the one extra broker start
these tests cost."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.settings import Settings
from tests.support.kafka_broker import KAFKA_SH, free_port_pair

#: SCRAM users created at format time besides broker, admin and cityops.
EXTRA_USERS = ("unit-310101", "gateway")


@dataclass
class SecureBroker:
    """A running secured broker, its CA and its users' passwords (in its state dir)."""

    bootstrap: str
    state_dir: Path
    env: dict[str, str]

    @property
    def cafile(self) -> Path:
        return self.state_dir / "secure" / "ca.pem"

    def password_file(self, user: str) -> Path:
        return self.state_dir / "secure" / "users" / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text(encoding="utf-8").strip()

    def settings(self, user: str, **overrides: object) -> Settings:
        """Settings that connect as `user` over SASL_SSL (override any field)."""
        fields: dict[str, object] = {
            "kafka_bootstrap_servers": self.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_username": user,
            "kafka_password": SecretStr(self.password(user)),
            "kafka_ssl_cafile": self.cafile,
            **overrides,
        }
        return Settings(**fields)  # type: ignore[arg-type]  # field kwargs

    def client_env(self, user: str) -> dict[str, str]:
        """The environment of a cityops process connecting as `user` (password inline)."""
        return {
            "CITYOPS_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CITYOPS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CITYOPS_KAFKA_USERNAME": user,
            "CITYOPS_KAFKA_PASSWORD": self.password(user),
            "CITYOPS_KAFKA_SSL_CAFILE": str(self.cafile),
        }

    def kafka_sh(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True, timeout=180
        )


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A private secured broker on free ports, stopped at the end of the session."""
    port = free_port_pair()
    state_dir = tmp_path_factory.mktemp("kafka-secure")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(port + 1),
        "KAFKA_STATE_DIR": str(state_dir),
        "KAFKA_SECURITY": "sasl_ssl",
        "KAFKA_SCRAM_USERS": ",".join(EXTRA_USERS),
    }
    broker = SecureBroker(f"127.0.0.1:{port}", state_dir, env)
    started = broker.kafka_sh("start")
    if started.returncode != 0:
        msg = f"kafka.sh start (sasl_ssl) failed:\n{started.stdout}\n{started.stderr}"
        raise RuntimeError(msg)
    try:
        yield broker
    finally:
        broker.kafka_sh("stop")
