"""The embedded backend is built from ``sinks.chdb``, the process override winning."""

from __future__ import annotations

from pathlib import Path

from pipeline.sinks import open_store
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.topology import Sinks


def test_defaults_without_a_sinks_section() -> None:
    store = open_store(None, {})
    assert isinstance(store, ChdbStore)
    assert (store.path, store.database) == (Path("data/chdb"), "cityops")


def test_the_topology_section_gives_path_and_database() -> None:
    sinks = Sinks.model_validate({"chdb": {"path": "var/agg", "database": "city_a"}})
    store = open_store(sinks, {})
    assert isinstance(store, ChdbStore)
    assert (store.path, store.database) == (Path("var/agg"), "city_a")


def test_the_settings_path_overrides_the_topology_s(tmp_path: Path) -> None:
    sinks = {"store": "chdb", "chdb": {"path": "var/agg", "database": "city_a"}}
    store = open_store(sinks, {}, chdb_path=str(tmp_path))
    assert isinstance(store, ChdbStore)
    assert (store.path, store.database) == (tmp_path, "city_a")
