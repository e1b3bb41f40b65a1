"""Stand-ins for what `BatchSender` hands aiokafka, for its unit tests (a duck-typed
producer needs a record and a batch builder that accepts anything)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FakeRecord:
    """A record as the worker's emits carry it."""

    topic: str
    key: bytes
    value: bytes


class FakeBuilder:
    """A batch builder with room for every record."""

    def append(self, **_: Any) -> object:
        return object()
