"""The server backend is built from ``sinks.clickhouse`` and the variables it names."""

from __future__ import annotations

import pytest

from pipeline.sinks import StoreError, open_store
from pipeline.sinks.backends.clickhouse import ClickHouseStore
from pipeline.topology import Sinks


def _open(environ: dict[str, str], **section: str) -> ClickHouseStore:
    sinks = Sinks.model_validate({"store": "clickhouse", "clickhouse": section})
    store = open_store(sinks, environ)
    assert isinstance(store, ClickHouseStore)
    return store


def test_the_default_variables_give_url_and_credentials() -> None:
    store = _open(
        {
            "CITYOPS_CLICKHOUSE_URL": "http://db.internal:8123",
            "CITYOPS_CLICKHOUSE_USER": "cityops",
            "CITYOPS_CLICKHOUSE_PASSWORD": "s3cret",
        }
    )
    assert (store.host, store.port, store.secure) == ("db.internal", 8123, False)
    assert (store.user, store.database, store.verify, store.ca_cert) == (
        "cityops",
        "cityops",
        True,
        None,
    )
    assert "s3cret" not in repr(store)


def test_the_section_names_the_variables_and_the_database() -> None:
    environ = {
        "CH_URL": "https://ch.example:9440",
        "CH_USER": "reader",
        "CITYOPS_CLICKHOUSE_USER": "not-this-one",
        "CITYOPS_CLICKHOUSE_VERIFY": "0",
        "CITYOPS_CLICKHOUSE_CA_CERT": "/etc/ca.pem",
    }
    store = _open(environ, url_env="CH_URL", user_env="CH_USER", database="city_b")
    assert (store.host, store.port, store.secure, store.verify) == ("ch.example", 9440, True, False)
    assert (store.user, store.database, store.ca_cert) == ("reader", "city_b", "/etc/ca.pem")


def test_a_missing_url_names_the_variable_to_set() -> None:
    with pytest.raises(StoreError) as refused:
        _open({"CITYOPS_CLICKHOUSE_URL": "http://ignored:8123"}, url_env="CH_URL")
    assert str(refused.value) == "sinks.store is clickhouse but CH_URL is not set"


def test_a_user_without_a_variable_is_default() -> None:
    assert _open({"CITYOPS_CLICKHOUSE_URL": "http://db:8123"}).user == "default"
