"""Every Kafka client connects the same way, and the security settings hold together."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import SecretStr, ValidationError

from pipeline.kafka.clients import bootstrap_of, client_options, faust_credentials
from pipeline.settings import Settings

PASSWORD = "s3cret-Kafka-pw"  # noqa: S105  # a fake credential the tests look for


def _sasl(**overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "kafka_bootstrap_servers": "k1:9093,k2:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_username": "cityops",
        "kafka_password": SecretStr(PASSWORD),
        **overrides,
    }
    return Settings(**fields)


def test_a_bare_bootstrap_list_means_plaintext() -> None:
    assert client_options("127.0.0.1:9092") == {"bootstrap_servers": "127.0.0.1:9092"}
    assert bootstrap_of("127.0.0.1:9092") == "127.0.0.1:9092"


def test_plaintext_settings_add_no_tls_and_no_login() -> None:
    options = client_options(Settings(kafka_bootstrap_servers="k:9092"))
    assert options == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None


def test_sasl_ssl_verifies_the_broker_and_logs_in_with_scram() -> None:
    settings = _sasl(kafka_sasl_mechanism="SCRAM-SHA-256")
    options = client_options(settings)
    assert bootstrap_of(settings) == "k1:9093,k2:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "cityops",
        PASSWORD,
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_sasl_plaintext_has_no_tls_and_ssl_has_no_login() -> None:
    options = client_options(_sasl(kafka_security_protocol="SASL_PLAINTEXT"))
    assert "ssl_context" not in options and options["sasl_mechanism"] == "SCRAM-SHA-512"
    options = client_options(Settings(kafka_security_protocol="SSL"))
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in options


def test_the_configured_ca_and_client_certificate_are_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}
    real = ssl.create_default_context

    def create(purpose: ssl.Purpose, cafile: str | None = None) -> ssl.SSLContext:
        seen["cafile"] = cafile
        context = real(purpose)
        monkeypatch.setattr(context, "load_cert_chain", lambda *a, **k: seen.update(chain=(a, k)))
        return context

    monkeypatch.setattr(ssl, "create_default_context", create)
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_ssl_certfile=tmp_path / "client.pem",
        kafka_ssl_keyfile=tmp_path / "client.key",
        kafka_ssl_key_password=SecretStr("key-pw"),
        kafka_ssl_check_hostname=False,
    )
    context = client_options(settings)["ssl_context"]
    assert seen["cafile"] == str(tmp_path / "ca.pem")
    assert seen["chain"] == (
        (str(tmp_path / "client.pem"),),
        {"keyfile": str(tmp_path / "client.key"), "password": "key-pw"},
    )
    assert not context.check_hostname


def test_faust_gets_the_same_credentials_and_never_shows_the_password() -> None:
    credentials = faust_credentials(_sasl())
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL
    assert credentials.mechanism == SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("cityops", PASSWORD)
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert PASSWORD not in repr(credentials)
    plain = faust_credentials(_sasl(kafka_security_protocol="SASL_PLAINTEXT"))
    assert isinstance(plain, SASLCredentials)
    assert plain.protocol == AuthProtocol.SASL_PLAINTEXT and plain.ssl_context is None
    assert isinstance(faust_credentials(Settings(kafka_security_protocol="SSL")), SSLCredentials)


def test_the_password_comes_from_a_file_and_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    monkeypatch.setenv("CITYOPS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CITYOPS_KAFKA_USERNAME", "cityops")
    monkeypatch.setenv("CITYOPS_KAFKA_PASSWORD_FILE", str(secret))
    settings = Settings()
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.masked())
    assert settings.masked()["kafka_password"] == "**********"  # noqa: S105  # the mask
    assert [secret.get_secret_value() for secret in settings.secrets()] == [PASSWORD]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_username": "u"}, "needs"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_password": PASSWORD}, "needs"),
        ({"kafka_username": "u", "kafka_password": PASSWORD}, "has no login"),
        ({"kafka_ssl_cafile": "ca.pem"}, "has no TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "k.pem"},
            "KEYFILE needs CITYOPS_KAFKA_SSL_CERTFILE",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"}, "SCRAM"),
    ],
)
def test_inconsistent_security_settings_are_refused_without_echoing_a_secret(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        Settings(**fields)
    assert PASSWORD not in str(caught.value)


def test_a_password_file_must_be_alone_readable_and_not_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    cases = {
        "not both": {"kafka_password": PASSWORD, "kafka_password_file": empty},
        "is empty": {"kafka_password_file": empty},
        "cannot read": {"kafka_password_file": tmp_path / "missing"},
    }
    for message, fields in cases.items():
        with pytest.raises(ValidationError, match=message) as caught:
            Settings(kafka_security_protocol="SASL_SSL", kafka_username="u", **fields)
        assert PASSWORD not in str(caught.value)
