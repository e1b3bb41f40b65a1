"""How every Kafka client of cityops connects: one place for the bootstrap servers and
(when configured) the connection's security, so the worker's consumers and producers,
the admin client and the CLI cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from pipeline.settings import Settings

__all__ = ["client_options", "output_producer"]


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by every aiokafka client (consumer, producer, admin)."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers}


def output_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    """The producer of a worker's outputs: every record acknowledged by all in-sync
    replicas (`acks=all`) and written once per send even when the client retries
    (idempotence), in batches of up to 1 MiB."""
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=settings.max_message_bytes + (64 << 10),
    )
