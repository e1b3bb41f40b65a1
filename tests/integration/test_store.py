"""One suite over both AggregateStore backends: embedded chDB, and clickhouse-connect
talking HTTP to the test-support server (which runs on the same chDB engine)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from pipeline.models import AggregateRow, AreaLevel, StoreRow, store_row
from pipeline.sinks.backends.chdb import ChdbStore, current_path, get_session
from pipeline.sinks.backends.clickhouse import ClickHouseStore
from pipeline.sinks.base import AggregateStore, StoreError, StoreUnavailable, dedup_token_for
from pipeline.sinks.batching import Backoff, Batcher
from pipeline.sinks.incidents import IncidentRow, incident_row, incidents_token_for
from tests.support.clickhouse_http import ClickHouseHTTPServer
from tests.support.store_rows import incident_json, incident_rows

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def stored(rows: Sequence[AggregateRow]) -> list[StoreRow]:
    """The models as the worker hands them to a store."""
    return [store_row(row) for row in rows]


@dataclass
class Backend:
    name: str
    store: AggregateStore
    database: str
    server: ClickHouseHTTPServer | None

    def physical_rows(self) -> int:
        """Rows stored, duplicates included (what FINAL collapses)."""
        session = get_session(current_path() or Path())
        result = session.query(f"SELECT count() FROM {self.database}.aggregates", "CSV")  # noqa: S608 - a generated name
        return int(result.bytes())


@pytest.fixture(params=["chdb", "clickhouse"])
def backend(
    request: pytest.FixtureRequest, chdb_dir: Path, ch_server: ClickHouseHTTPServer
) -> Iterator[Backend]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store: AggregateStore
    if request.param == "chdb":
        store = ChdbStore(chdb_dir, database=database)
        server = None
    else:
        store = ClickHouseStore(
            ch_server.url, database=database, user="cityops", password=SecretStr("s3cret")
        )
        server = ch_server
    store.init()
    try:
        yield Backend(request.param, store, database, server)
    finally:
        ch_server.up()
        store.close()


def make_rows(minutes: int, *, area: str = "310101002", level: AreaLevel = AreaLevel.street,
              metric: str = "pm25", scale: float = 1.0) -> list[AggregateRow]:  # fmt: skip
    return [
        AggregateRow(
            window_start=T0 + i * MINUTE,
            window_end=T0 + (i + 1) * MINUTE,
            level=level,
            area_code=area,
            metric=metric,
            count=i + 1,
            sum=(i + 1) * 10.25 * scale,
            min=0.5 * i,
            max=100.0 + i,
            mean=10.25 * scale,
            breaches=i % 3,
        )
        for i in range(minutes)
    ]


def all_rows(store: AggregateStore) -> list[AggregateRow]:
    out: list[AggregateRow] = []
    for level, area in (
        (AreaLevel.street, "310101002"),
        (AreaLevel.district, "310101"),
        (AreaLevel.city, "310000"),
    ):
        for metric in ("pm25", "no2"):
            out.extend(store.query(area, metric, T0 - HOUR, T0 + 24 * HOUR, level))
    return out


def test_init_is_idempotent_and_starts_empty(backend: Backend) -> None:
    backend.store.init()
    assert backend.store.query("310101002", "pm25", T0, T0 + HOUR, AreaLevel.street) == []


def test_write_then_query_returns_exact_rows(backend: Backend) -> None:
    street = make_rows(10)
    district = make_rows(4, area="310101", level=AreaLevel.district, metric="no2")
    backend.store.write(stored(street + district), dedup_token="batch-1")  # noqa: S106

    assert backend.store.query("310101002", "pm25", T0, T0 + HOUR, AreaLevel.street) == street
    got = backend.store.query("310101", "no2", T0, T0 + HOUR, AreaLevel.district)
    assert got == district
    assert got[2].sum == 30.75 and got[2].breaches == 2 and got[2].count == 3
    # the city is rolled up from its districts (here one district: the same numbers)
    city = [row.model_copy(update={"level": AreaLevel.city, "area_code": "310000"})
            for row in district]  # fmt: skip
    assert backend.store.query("310000", "no2", T0, T0 + HOUR, AreaLevel.city) == city
    assert backend.store.query("310000", "pm25", T0, T0 + HOUR, AreaLevel.city) == []
    # since inclusive, until exclusive; other level / metric / area filtered out
    window = backend.store.query(
        "310101002", "pm25", T0 + 2 * MINUTE, T0 + 5 * MINUTE, AreaLevel.street
    )
    assert [r.window_start for r in window] == [T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert backend.store.query("310101002", "pm25", T0, T0 + HOUR, AreaLevel.district) == []
    assert backend.store.query("310101002", "no2", T0, T0 + HOUR, AreaLevel.street) == []


def test_long_and_non_ascii_names_and_odd_values_survive_the_round_trip(
    backend: Backend,
) -> None:
    # An area code past 127 bytes takes a two-byte length in RowBinary; a metric name in
    # Chinese is multi-byte UTF-8; windows need not fall on whole seconds.
    area = "310101002-" + "街道" * 70
    start = T0 + timedelta(milliseconds=1_234)
    row = AggregateRow(
        window_start=start, window_end=start + timedelta(seconds=30, milliseconds=5),
        level=AreaLevel.street, area_code=area, metric="噪声", count=2**40,
        sum=-1e-300, min=-273.15, max=1e300, mean=0.1 + 0.2, breaches=7,
    )  # fmt: skip
    backend.store.write(stored([row]), dedup_token="odd-1")  # noqa: S106
    assert backend.store.query(area, "噪声", T0, T0 + HOUR, AreaLevel.street) == [row]


def test_rewrite_with_the_same_token_is_dropped(backend: Backend) -> None:
    rows = make_rows(6)
    backend.store.write(stored(rows), dedup_token=dedup_token_for(stored(rows)))
    before = all_rows(backend.store)
    backend.store.write(stored(rows), dedup_token=dedup_token_for(stored(rows)))
    assert all_rows(backend.store) == before == rows
    assert backend.physical_rows() == 6  # the server dropped the repeated block


def test_replay_with_other_batch_boundaries_leaves_answers_unchanged(backend: Backend) -> None:
    rows = make_rows(8) + make_rows(5, area="310101", level=AreaLevel.district, metric="no2")
    for batch in (rows[:3], rows[3:9], rows[9:]):
        backend.store.write(stored(batch), dedup_token=dedup_token_for(stored(batch)))
    expected = all_rows(backend.store)
    assert len(expected) == 18  # 8 street + 5 district + their 5 city roll-ups
    # crash + replay from an older offset: same rows, cut differently -> new tokens
    for batch in (rows[:5], rows[5:]):
        backend.store.write(stored(batch), dedup_token=dedup_token_for(stored(batch)))
    assert backend.physical_rows() == 26  # stored twice ...
    assert all_rows(backend.store) == expected  # ... answered once (FINAL)


def test_a_rewritten_window_replaces_the_earlier_row(backend: Backend) -> None:
    backend.store.write(stored(make_rows(3)), dedup_token="first")  # noqa: S106
    corrected = make_rows(3, scale=2.0)
    backend.store.write(stored(corrected), dedup_token="second")  # noqa: S106
    assert all_rows(backend.store) == corrected


class _FlakyStore:
    """Delegates to a real store but is 'down' while ``down`` is true (chDB has no network
    to cut, so its outage is simulated at the protocol boundary)."""

    def __init__(self, inner: AggregateStore) -> None:
        self.inner = inner
        self.down = False

    def init(self) -> None:
        self.inner.init()

    def write(self, rows: Sequence[StoreRow], *, dedup_token: str) -> None:
        if self.down:
            msg = "simulated chDB outage"
            raise StoreUnavailable(msg)
        self.inner.write(rows, dedup_token=dedup_token)

    def write_incidents(self, rows: Sequence[IncidentRow], *, dedup_token: str) -> None:
        self.inner.write_incidents(rows, dedup_token=dedup_token)

    def query(self, area_code: str, metric: str, since: datetime, until: datetime,
              level: AreaLevel) -> list[AggregateRow]:  # fmt: skip
        return self.inner.query(area_code, metric, since, until, level)

    def close(self) -> None:
        self.inner.close()


def test_outage_is_retried_by_the_batcher_and_nothing_is_lost(backend: Backend) -> None:
    check_outage(backend, "503")


@pytest.mark.parametrize("mode", ["drop", "stopped"])
def test_connection_outages_are_retried_too(
    chdb_dir: Path, ch_server: ClickHouseHTTPServer, mode: str
) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ClickHouseStore(
        ch_server.url, database=database, user="cityops", password=SecretStr("s3cret")
    )
    store.init()
    try:
        check_outage(Backend("clickhouse", store, database, ch_server), mode)
    finally:
        if mode == "stopped" and ch_server._server is None:
            ch_server.start()
        ch_server.up()
        store.close()


def check_outage(backend: Backend, mode: str) -> None:
    """Down after the first batch, up after three backoffs: every row lands, offsets wait."""
    now = [0.0]
    store: AggregateStore = backend.store
    flaky: _FlakyStore | None = None
    if backend.server is None:
        flaky = _FlakyStore(backend.store)
        store = flaky

    def go_down() -> None:
        if flaky is not None:
            flaky.down = True
        elif mode == "stopped":
            assert backend.server is not None
            backend.server.stop()
        else:
            assert backend.server is not None
            backend.server.down(mode)

    def come_up() -> None:
        if flaky is not None:
            flaky.down = False
        elif mode == "stopped":
            assert backend.server is not None
            backend.server.start()
        else:
            assert backend.server is not None
            backend.server.up()

    batcher = Batcher(
        store, max_rows=4, max_age=1.0, backoff=Backoff(initial=0.5, maximum=4.0),
        clock=lambda: now[0],
    )  # fmt: skip
    rows = make_rows(10)
    first = batcher.add(stored(rows[:4]), offsets={("readings", 0): 100})
    assert first.committable == {("readings", 0): 100}
    assert first.written_rows == 4

    go_down()
    during = batcher.add(stored(rows[4:]), offsets={("readings", 0): 250, ("readings", 1): 7})
    assert isinstance(during.error, StoreUnavailable)
    assert during.committable == {}  # nothing acknowledged: offsets must not move
    assert batcher.committable == {("readings", 0): 100}
    assert batcher.pending_rows == 6
    assert batcher.retry_in() == 0.5

    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 3:
            come_up()

    result = batcher.flush_blocking(timeout=60, sleep=fake_sleep)
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff while down, capped at 4
    assert result.committable == {("readings", 0): 250, ("readings", 1): 7}
    assert batcher.pending_rows == 0
    assert backend.store.query("310101002", "pm25", T0, T0 + HOUR, AreaLevel.street) == rows


def test_a_bad_request_is_a_store_error_not_an_outage(backend: Backend) -> None:
    with pytest.raises(StoreError) as info:
        backend.store.write(stored(make_rows(1)), dedup_token="bad token with spaces")  # noqa: S106
    assert not isinstance(info.value, StoreUnavailable)


def test_password_never_appears_in_repr(ch_server: ClickHouseHTTPServer) -> None:
    store = ClickHouseStore(ch_server.url, user="cityops", password=SecretStr("s3cret"))
    assert "s3cret" not in repr(store)
    wrong = ClickHouseStore(ch_server.url, user="cityops", password=SecretStr("nope"))
    with pytest.raises(StoreError) as info:
        wrong.init()
    assert "nope" not in str(info.value)


def district_row(area: str, minute: int, *, count: int, total: float, low: float, high: float,
                 breaches: int, metric: str = "pm25") -> AggregateRow:  # fmt: skip
    return AggregateRow(
        window_start=T0 + minute * MINUTE,
        window_end=T0 + (minute + 1) * MINUTE,
        level=AreaLevel.district,
        area_code=area,
        metric=metric,
        count=count,
        sum=total,
        min=low,
        max=high,
        mean=total / count,
        breaches=breaches,
    )


def test_city_rows_are_rolled_up_from_district_rows(backend: Backend) -> None:
    huangpu = [
        district_row("310101", 0, count=4, total=200.0, low=20.0, high=90.0, breaches=1),
        district_row("310101", 1, count=2, total=50.0, low=10.0, high=40.0, breaches=0),
    ]
    xuhui = [
        district_row("310104", 0, count=6, total=400.0, low=5.0, high=120.0, breaches=3),
        district_row("310104", 2, count=1, total=7.5, low=7.5, high=7.5, breaches=0),
    ]
    others = [
        district_row("310104", 0, count=9, total=9.0, low=1.0, high=1.0, breaches=0, metric="no2"),
        *make_rows(2),  # street rows never count towards the city
    ]
    backend.store.write(stored(huangpu + xuhui + others), dedup_token="rollup-1")  # noqa: S106
    # a corrected Huangpu window replaces the first copy before the roll-up (FINAL inside)
    fixed = district_row("310101", 0, count=5, total=250.0, low=20.0, high=95.0, breaches=2)
    backend.store.write(stored([fixed]), dedup_token="rollup-2")  # noqa: S106

    got = backend.store.query("310000", "pm25", T0, T0 + HOUR, AreaLevel.city)

    assert [(r.window_start, r.window_end) for r in got] == [
        (T0, T0 + MINUTE), (T0 + MINUTE, T0 + 2 * MINUTE), (T0 + 2 * MINUTE, T0 + 3 * MINUTE),
    ]  # fmt: skip
    assert all(r.level == AreaLevel.city and r.area_code == "310000" for r in got)
    assert all(r.metric == "pm25" for r in got)
    assert [(r.count, r.sum, r.min, r.max, r.breaches) for r in got] == [
        (11, 650.0, 5.0, 120.0, 5),
        (2, 50.0, 10.0, 40.0, 0),
        (1, 7.5, 7.5, 7.5, 0),
    ]
    assert [r.mean for r in got] == [650.0 / 11, 25.0, 7.5]
    # since inclusive, until exclusive, on window_start
    later = backend.store.query("310000", "pm25", T0 + MINUTE, T0 + 2 * MINUTE, AreaLevel.city)
    assert [(r.window_start, r.count) for r in later] == [(T0 + MINUTE, 2)]
    assert backend.store.query("310000", "o3", T0, T0 + HOUR, AreaLevel.city) == []


def test_memory_store_rolls_up_like_the_sql_backends() -> None:
    from pipeline.sinks.memory import MemoryStore

    store = MemoryStore()
    store.init()
    rows = [
        district_row("310101", 0, count=4, total=200.0, low=20.0, high=90.0, breaches=1),
        district_row("310104", 0, count=6, total=400.0, low=5.0, high=120.0, breaches=3),
    ]
    store.write(stored(rows), dedup_token="m-1")  # noqa: S106
    (city,) = store.query("310000", "pm25", T0, T0 + HOUR, AreaLevel.city)
    assert (city.count, city.sum, city.min, city.max, city.breaches) == (10, 600.0, 5.0, 120.0, 4)
    assert city.mean == 60.0 and city.area_code == "310000" and city.level == AreaLevel.city


def stored_incidents(backend: Backend) -> dict[str, tuple[object, ...]]:
    """incident_id -> (version, state, lat, lon, resolve_due) as FINAL reads them."""
    session = get_session(current_path() or Path())
    result = session.query(
        "SELECT incident_id, version, state, lat, lon, resolve_due "  # noqa: S608 - a generated name
        f"FROM {backend.database}.incidents FINAL ORDER BY incident_id",
        "JSONCompact",
    )
    return {row[0]: tuple(row[1:]) for row in orjson.loads(result.bytes())["data"]}


def test_incidents_keep_their_newest_version_with_or_without_a_location(
    backend: Backend,
) -> None:
    opened = incident_row(incident_json(location={"lat": 31.2353, "lon": 121.4846}))
    acknowledged = incident_row(
        incident_json(version=2, state="acknowledged", location={"lat": 31.25, "lon": 121.5})
    )
    older_contract = incident_row(incident_json(incident_id="inc-2", resolve_due=None))
    batch = [acknowledged, older_contract]
    backend.store.write_incidents(batch, dedup_token=incidents_token_for(batch))
    backend.store.write_incidents([opened], dedup_token=incidents_token_for([opened]))  # late
    backend.store.write_incidents(batch, dedup_token=incidents_token_for(batch))  # a retry
    assert stored_incidents(backend) == {
        "inc-2": (1, "open", None, None, None),
        "inc-aq-001-pm25": (2, "acknowledged", 31.25, 121.5, "2024-05-01 14:00:00.000"),
    }


def test_many_incidents_round_trip(backend: Backend) -> None:
    rows = incident_rows(40)
    backend.store.write_incidents(rows, dedup_token=incidents_token_for(rows))
    stored = stored_incidents(backend)
    assert len(stored) == 40
    assert stored["inc-7"] == (rows[7].version, rows[7].state, rows[7].lat, rows[7].lon,
                               "2024-05-01 14:00:00.000")  # fmt: skip
