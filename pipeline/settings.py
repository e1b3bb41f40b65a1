"""Worker and CLI configuration: one typed, frozen object read from the environment.

Why: defaults live in one place, every value has a unit and an env name, and secrets are
`SecretStr` so they are never printed. The CLI builds it once and passes it down; nothing
reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Everything a worker needs besides its topology; env prefix ``CITYOPS_``."""

    # hide_input_in_errors: a model-level error would otherwise print every input, passwords
    # included, and the CLI shows settings errors to the user.
    model_config = SettingsConfigDict(
        env_prefix="CITYOPS_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated (CITYOPS_KAFKA_BOOTSTRAP_SERVERS).",
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or "
        "SASL_SSL (TLS, then a SCRAM login) (CITYOPS_KAFKA_SECURITY_PROTOCOL).",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism with SASL_* protocols (CITYOPS_KAFKA_SASL_MECHANISM).",
    )
    kafka_username: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="SASL user, the principal ACLs name as User:<name> (CITYOPS_KAFKA_USERNAME).",
    )
    kafka_password: SecretStr | None = Field(
        default=None,
        description="SASL password; never logged. Prefer the file (CITYOPS_KAFKA_PASSWORD).",
    )
    kafka_password_file: Path | None = Field(
        default=None,
        description="File holding the SASL password (a mounted secret), read once at start; "
        "one trailing newline is ignored (CITYOPS_KAFKA_PASSWORD_FILE).",
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM CA bundle that signed the brokers' certificates; unset: the system's "
        "CAs (CITYOPS_KAFKA_SSL_CAFILE).",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate for brokers that require one; may hold the key "
        "too (CITYOPS_KAFKA_SSL_CERTFILE).",
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None,
        description="PEM private key of the client certificate (CITYOPS_KAFKA_SSL_KEYFILE).",
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None,
        description="Password of an encrypted client key; never logged "
        "(CITYOPS_KAFKA_SSL_KEY_PASSWORD).",
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Check that a broker's certificate names the host connected to; turn off "
        "only for a test CA without the right names (CITYOPS_KAFKA_SSL_CHECK_HOSTNAME).",
    )
    topology: Path | None = Field(
        default=None, description="Topology YAML file (CITYOPS_TOPOLOGY)."
    )
    topic_prefix: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Overrides the topology's topics.prefix, e.g. to run a staging copy "
        "beside production on one cluster (CITYOPS_TOPIC_PREFIX).",
    )
    worker_id: str = Field(
        default="cityops", description="Faust app id = consumer group (CITYOPS_WORKER_ID)."
    )
    data_dir: Path = Field(
        default=Path("data"),
        description="Where a worker keeps everything on disk: Faust's table directory "
        "(faust/), the poison log (poison.json) and the embedded chDB store (the topology's "
        "sinks.chdb.path, `chdb` by default, under this directory) (CITYOPS_DATA_DIR).",
    )
    chdb_path: Path | None = Field(
        default=None,
        description="The embedded store's data directory, instead of sinks.chdb.path under "
        "CITYOPS_DATA_DIR; chDB allows one process per directory (CITYOPS_CHDB_PATH).",
    )
    sla_check_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often SLA deadlines are checked, seconds (CITYOPS_SLA_CHECK_SECONDS).",
    )
    web_port: int = Field(
        default=6066, ge=1, le=65535, description="HTTP port for /metrics (CITYOPS_WEB_PORT)."
    )
    web_host: str = Field(default="127.0.0.1", description="HTTP bind address (CITYOPS_WEB_HOST).")
    max_message_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Largest raw message accepted, bytes, when lower than the topology's "
        "topics.max_message_bytes (the default); larger ones are dead-lettered as 'oversized' "
        "(CITYOPS_MAX_MESSAGE_BYTES).",
    )
    stop_timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        description="Longest a stop may take; past it the worker exits with status 75 and "
        "what it had not acknowledged is replayed (CITYOPS_STOP_TIMEOUT_SECONDS).",
    )
    batch_size: int = Field(
        default=5000, gt=0, description="Most events per agent batch (CITYOPS_BATCH_SIZE)."
    )
    batch_within_seconds: float = Field(
        # Below saturation every agent waits this long per batch, three agents in a row:
        # 20 ms keeps p99 raw -> incident under 250 ms; under load batches still fill.
        default=0.02,
        gt=0,
        description="Longest wait to fill a batch, seconds (CITYOPS_BATCH_WITHIN_SECONDS).",
    )
    pass_max_bytes: int = Field(
        # A pass's changed states wait, as changelog records, until the pass is sent: a
        # batch of 5,000 readings messages touching 100,000 sensors' states held ~100 MB
        # of them at once (records and the producer's copy). But every pass re-sends the
        # open window groups it touched, so small passes cost throughput: 1 MB (~7,000
        # readings) ran ~13% slower than unbounded batches at saturation, 2 MB ~10%, 4 MB
        # ~5% (A/B pairs, noisy); peak RSS with 100,000 sensors 564 / 571 / 583 MB.
        default=2_000_000,
        gt=0,
        description="Most input bytes a stateful agent runs in one pass; a larger batch is "
        "run in passes, each one's outputs and state changes sent while the next runs, "
        "at most one pass behind (CITYOPS_PASS_MAX_BYTES).",
    )
    clickhouse_url: str | None = Field(
        default=None, description="ClickHouse server URL (CITYOPS_CLICKHOUSE_URL)."
    )
    clickhouse_user: str = Field(default="default", description="(CITYOPS_CLICKHOUSE_USER)")
    clickhouse_password: SecretStr = Field(
        default=SecretStr(""), description="Never logged (CITYOPS_CLICKHOUSE_PASSWORD)."
    )
    log_level: str = Field(default="info", description="(CITYOPS_LOG_LEVEL)")

    @model_validator(mode="before")
    @classmethod
    def _password_from_file(cls, data: Any) -> Any:
        """CITYOPS_KAFKA_PASSWORD_FILE -> kafka_password, read once here (its path stays)."""
        if not isinstance(data, dict) or not data.get("kafka_password_file"):
            return data
        if data.get("kafka_password"):
            msg = "set CITYOPS_KAFKA_PASSWORD or CITYOPS_KAFKA_PASSWORD_FILE, not both"
            raise ValueError(msg)
        path = Path(data["kafka_password_file"])
        try:
            password = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as exc:
            msg = (
                f"kafka_password_file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            )
            raise ValueError(msg) from exc
        if not password:
            msg = f"kafka_password_file: {path} is empty"
            raise ValueError(msg)
        return {**data, "kafka_password": password}

    @model_validator(mode="after")
    def _security_is_consistent(self) -> Settings:
        """Credentials and TLS files only with a protocol that uses them: a password beside
        PLAINTEXT would be silently ignored, and the operator would believe the link safe."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        tls = self.kafka_security_protocol.endswith("SSL")
        password = self.kafka_password.get_secret_value() if self.kafka_password else ""
        if sasl and (self.kafka_username is None or not password):
            msg = f"{self.kafka_security_protocol} needs CITYOPS_KAFKA_USERNAME and a password"
            raise ValueError(msg)
        if not sasl and (self.kafka_username is not None or self.kafka_password is not None):
            msg = (
                "Kafka credentials are set but the protocol "
                f"{self.kafka_security_protocol} has no login"
            )
            raise ValueError(msg)
        files = {
            "CITYOPS_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "CITYOPS_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "CITYOPS_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
        }
        given = [name for name, value in files.items() if value is not None]
        if given and not tls:
            msg = (
                f"{', '.join(given)} set but the protocol {self.kafka_security_protocol} has no TLS"
            )
            raise ValueError(msg)
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            msg = "CITYOPS_KAFKA_SSL_KEYFILE needs CITYOPS_KAFKA_SSL_CERTFILE"
            raise ValueError(msg)
        return self

    def chdb_dir(self, configured: str | Path) -> Path:
        """The embedded store's directory: CITYOPS_CHDB_PATH when set, else the topology's
        ``sinks.chdb.path`` (``configured``) under CITYOPS_DATA_DIR; an absolute
        ``configured`` path is taken as it is.

        Why under the data directory: a topology is shared by every worker, so a path in it
        cannot tell two workers apart; the data directory is per worker.
        """
        if self.chdb_path is not None:
            return self.chdb_path
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    def secrets(self) -> list[SecretStr]:
        """Every secret that is set (passwords), for the log masker to hide wherever it
        appears: ``configure_logging(secrets=settings.secrets())``."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [value for value in values if isinstance(value, SecretStr) and value]

    def masked(self) -> dict[str, object]:
        """The settings as a mapping safe to print: secrets stay masked."""
        return {
            key: ("**********" if isinstance(value, SecretStr) and value else value)
            for key, value in self.model_dump().items()
        }
