"""How every Kafka client of cityops connects: one place for the bootstrap servers and the
connection's security (TLS, SASL/SCRAM), so the worker's consumers and producers, the
Faust app, the admin client and the CLI cannot drift apart.

A client is given a :data:`Connection`: the settings (what the CLI and the worker pass),
or a bare bootstrap list, which means plaintext (tests and tools on a local broker).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = [
    "Connection",
    "bootstrap_of",
    "client_options",
    "faust_credentials",
    "learn_topics",
    "output_producer",
    "ssl_context",
]

Connection = Settings | str


def bootstrap_of(connection: Connection) -> str:
    """The bootstrap servers of a connection, for messages (never its credentials)."""
    return connection if isinstance(connection, str) else connection.kafka_bootstrap_servers


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of every client: the configured CA (else the system's), the broker's
    name checked unless turned off, and a client certificate when one is configured."""
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile is not None:
        key_password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            password=key_password.get_secret_value() if key_password else None,
        )
    return context


def client_options(connection: Connection) -> dict[str, Any]:
    """Connection options shared by every aiokafka client (consumer, producer, admin)."""
    if isinstance(connection, str):
        return {"bootstrap_servers": connection}
    settings = connection
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust app's `broker_credentials`, from the same settings as every other client."""
    from faust.auth import SASLCredentials, SSLCredentials  # heavy: only the worker needs it

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    password = settings.kafka_password
    return SASLCredentials(
        username=settings.kafka_username,
        password=password.get_secret_value() if password else None,
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
        mechanism=settings.kafka_sasl_mechanism,
    )


def output_producer(
    settings: Settings, client_id: str, max_message_bytes: int = 1_048_576
) -> AIOKafkaProducer:
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
        max_request_size=max_message_bytes + (64 << 10),
    )


async def learn_topics(producer: AIOKafkaProducer, topics: Iterable[str]) -> list[str]:
    """Have a started producer know, in one metadata request, every one of ``topics`` that
    exists; return those.

    Why: aiokafka learns a topic on its first send to it, with one metadata request that
    re-reads every topic known so far. A worker sends to hundreds of district and street
    topics, each first time in the middle of a batch: on a full city, over a hundred
    requests of about 20 ms each of decoding on the event loop. Topics that do not exist
    are left out (asking for one by name may have the broker create it). When the broker
    does not answer, none is learned now: each is learned on its first send, as before.
    """
    client = producer.client
    try:
        every = await client.fetch_all_metadata()
    except KafkaError:
        return []
    existing = [topic for topic in dict.fromkeys(topics) if every.partitions_for_topic(topic)]
    if existing:
        await client.set_topics(existing)  # a failed update: learned on first send
    return existing
