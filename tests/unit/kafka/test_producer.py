"""The producer's pacing (pipeline/kafka/producer.py): pure, on an injected clock."""

from __future__ import annotations

import pytest

from pipeline.kafka.producer import TokenBucket, chunk_size


def test_token_bucket_paces_to_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(100.0, burst=10.0, clock=lambda: now[0])
    assert bucket.reserve(10) == pytest.approx(0.1)  # empty at start: 10 tokens = 0.1 s
    now[0] = 0.1
    assert bucket.reserve(10) == pytest.approx(0.1)
    now[0] = 5.0  # a long pause saves up only `burst` tokens
    assert bucket.reserve(10) == 0.0
    assert bucket.reserve(50) == pytest.approx(0.5)
    assert chunk_size(200) == 4 and chunk_size(1e7) == 2000 and chunk_size(None) == 2000
