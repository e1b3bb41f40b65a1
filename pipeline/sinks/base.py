"""The AggregateStore contract every backend implements: protocol, errors, dedup tokens.

Backend-neutral on purpose: the SQL the two ClickHouse-engine backends share lives in
``clickhouse_sql``, each backend in ``backends/``, and how a topology names one in
``registry``. What a store promises (DESIGN §6, "a replay after a crash changes no
aggregate"):

- a row's key is ``(level, area_code, metric, window_start)``; a replayed row replaces the
  earlier copy whatever batch it arrives in, and reads see one row per key;
- ``write(rows, dedup_token=...)`` drops a repeat of a recent token, so a retried
  identical batch does not pile up copies (``dedup_token_for`` derives the token from the
  batch's content; a store that encodes rows itself, an ``EncodingStore``, is handed the
  bytes, and the token is theirs: ``payload_token``);
- the city level is not stored: it is rolled up from the district rows at read time;
- ``write_incidents`` keeps the incidents' current state: per incident, the row with the
  highest version is what reads see (``sinks.incidents``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import orjson

from pipeline.models import STORE_ROW_FIELDS, AggregateRow, AreaLevel, StoreRow

if TYPE_CHECKING:
    from pipeline.sinks.incidents import IncidentRow

#: A row's items in the order its token hashes them (the order of the first tokens: a
#: replay across an upgrade must get the token its first insert got).
_TOKEN_FIELDS = itemgetter(*(STORE_ROW_FIELDS.index(name) for name in (
    "level", "area_code", "metric", "window_start", "window_end", "count", "sum", "min",
    "max", "mean", "breaches", "schema_version",
)))  # fmt: skip
_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


class StoreError(Exception):
    """A store operation failed in a way retrying will not fix (bad SQL, schema, config)."""


class StoreUnavailable(StoreError):
    """The store cannot take the request now (down, overloaded); retry after a pause.

    ``retry_after`` (seconds) is the store's hint, or None for the caller's own backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class AggregateStore(Protocol):
    """Where closed-window aggregate rows land; every backend implements exactly this."""

    def init(self) -> None:
        """Create the database and tables if missing (idempotent)."""
        ...

    def write(self, rows: Sequence[StoreRow], *, dedup_token: str) -> None:
        """Store ``rows`` as one insert; a repeat with the same token is a no-op."""
        ...

    def write_incidents(self, rows: Sequence[IncidentRow], *, dedup_token: str) -> None:
        """Store incident versions as one insert (the newest version of each wins)."""
        ...

    def query(
        self,
        area_code: str,
        metric: str,
        since: datetime,
        until: datetime,
        level: AreaLevel,
    ) -> list[AggregateRow]:
        """Rows of one area and metric with ``since <= window_start < until``, in time order."""
        ...

    def close(self) -> None:
        """Release connections; the store object is unusable afterwards."""
        ...


@runtime_checkable
class EncodingStore(AggregateStore, Protocol):
    """A store whose insert is one encoded payload: the batcher encodes a batch once and
    derives the batch's token from those bytes (`payload_token`).

    Why: the content token was a second encoding of every row (orjson of its fields), as
    costly as the insert's own, on a thread that shares the worker's interpreter lock;
    the worker writes about two rows per reading."""

    def encode(self, rows: Sequence[StoreRow]) -> bytes:
        """The insert payload of ``rows`` (every stored field of every row)."""
        ...

    def write_encoded(self, payload: bytes, *, dedup_token: str) -> None:
        """Store a payload made by ``encode`` as one insert; a repeated token is a no-op."""
        ...


def check_token(token: str) -> str:
    """Return ``token`` if it is safe to embed in a SETTINGS clause."""
    if not _TOKEN.match(token):
        msg = f"dedup token must match {_TOKEN.pattern}, got {token!r}"
        raise StoreError(msg)
    return token


def dedup_token_for(rows: Sequence[StoreRow]) -> str:
    """A token derived from the rows' content: equal batches get equal tokens.

    Content (not offsets) because a token drops a repeat *even when the data differ*; a
    content hash can only ever drop an exact repeat. Every field goes into the hash
    (orjson: times with their microseconds, floats as their shortest exact text); one
    `orjson.dumps` of the batch costs a quarter of formatting each row (the worker writes
    about two rows per reading). The fields are taken from each row by one `itemgetter`:
    one C-level call a row.
    """
    return payload_token(orjson.dumps(list(map(_TOKEN_FIELDS, rows))), len(rows))


def payload_token(payload: bytes, rows: int) -> str:
    """The token of an encoded batch of ``rows`` rows: a hash of the very bytes the store
    receives, so a repeat is dropped only when its insert would be byte-identical."""
    return f"agg-{rows}-{hashlib.blake2b(payload, digest_size=16).hexdigest()}"


def roll_up_city(district_rows: Sequence[AggregateRow], city_code: str) -> list[AggregateRow]:
    """The city's rows from district rows, per window and metric, in time order.

    The definition of the city level for every backend (the SQL backends compute the same
    with ``clickhouse_sql.CITY_ROLLUP_SQL``): counts, sums and breaches add up, the mean
    is the pooled one, min/max/window_end/schema_version are the extremes.
    """
    groups: dict[tuple[datetime, str], list[AggregateRow]] = {}
    for row in district_rows:
        groups.setdefault((row.window_start, row.metric), []).append(row)
    rolled: list[AggregateRow] = []
    for (start, metric), rows in sorted(groups.items(), key=lambda item: item[0]):
        count = sum(r.count for r in rows)
        total = sum(r.sum for r in rows)
        rolled.append(
            AggregateRow(
                window_start=start,
                window_end=max(r.window_end for r in rows),
                level=AreaLevel.city,
                area_code=city_code,
                metric=metric,
                count=count,
                sum=total,
                min=min(r.min for r in rows),
                max=max(r.max for r in rows),
                mean=total / count if count else 0.0,
                breaches=sum(r.breaches for r in rows),
                schema_version=max(r.schema_version for r in rows),
            )
        )
    return rolled
