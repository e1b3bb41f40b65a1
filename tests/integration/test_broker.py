"""The broker the tests use is Apache Kafka itself, answering on the wire."""

from __future__ import annotations

from tests.support.kafka_broker import load_probe

DESCRIBE_QUORUM = 55  # a KRaft-only API
PRODUCE = 0


def test_broker_answers_api_versions_as_apache_kafka_in_kraft_mode(kafka_bootstrap: str) -> None:
    probe = load_probe()
    answer = probe.api_versions(kafka_bootstrap)
    assert DESCRIBE_QUORUM in answer.api_keys
    assert answer.api_keys[PRODUCE][1] >= 11, "Kafka 4.x serves Produce v11+"
    assert "metadata.version" in answer.finalized_features, "KRaft finalizes metadata.version"
    assert "kraft.version" in answer.finalized_features


def test_metadata_lists_the_single_broker(kafka_bootstrap: str) -> None:
    probe = load_probe()
    brokers = probe.metadata_brokers(kafka_bootstrap)
    host, _, port = kafka_bootstrap.rpartition(":")
    assert [(b[1], b[2]) for b in brokers] == [(host, int(port))]
