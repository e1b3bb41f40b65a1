"""Worker and CLI configuration: one typed, frozen object read from the environment.

Why: defaults live in one place, every value has a unit and an env name, and secrets are
`SecretStr` so they are never printed. The CLI builds it once and passes it down; nothing
reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker needs besides its topology; env prefix ``CITYOPS_``."""

    model_config = SettingsConfigDict(env_prefix="CITYOPS_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated (CITYOPS_KAFKA_BOOTSTRAP_SERVERS).",
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
        description="Worker state: Faust tables, chDB store (CITYOPS_DATA_DIR).",
    )
    chdb_path: Path | None = Field(
        default=None,
        description="Overrides the topology's sinks.chdb.path: the embedded store's data "
        "directory; chDB allows one process per directory (CITYOPS_CHDB_PATH).",
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
    max_message_bytes: int = Field(
        default=1_048_576,
        gt=0,
        description="Largest raw message accepted, bytes; larger ones are dead-lettered as "
        "'oversized' (CITYOPS_MAX_MESSAGE_BYTES).",
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
    processing_guarantee: str = Field(
        default="at_least_once",
        pattern="^(at_least_once|exactly_once)$",
        description="Faust processing guarantee (CITYOPS_PROCESSING_GUARANTEE).",
    )
    clickhouse_url: str | None = Field(
        default=None, description="ClickHouse server URL (CITYOPS_CLICKHOUSE_URL)."
    )
    clickhouse_user: str = Field(default="default", description="(CITYOPS_CLICKHOUSE_USER)")
    clickhouse_password: SecretStr = Field(
        default=SecretStr(""), description="Never logged (CITYOPS_CLICKHOUSE_PASSWORD)."
    )
    log_level: str = Field(default="info", description="(CITYOPS_LOG_LEVEL)")

    def masked(self) -> dict[str, object]:
        """The settings as a mapping safe to print: secrets stay masked."""
        return {
            key: ("**********" if isinstance(value, SecretStr) and value else value)
            for key, value in self.model_dump().items()
        }
