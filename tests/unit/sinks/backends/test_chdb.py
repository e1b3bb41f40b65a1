"""The embedded backend is built from ``sinks.chdb``, the process override winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings
from pipeline.sinks import open_store
from pipeline.sinks.backends.chdb import ChdbStore
from pipeline.topology import Sinks


def test_defaults_without_a_sinks_section() -> None:
    store = open_store(None, {})
    assert isinstance(store, ChdbStore)
    assert (store.path, store.database) == (Path("chdb"), "cityops")


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


def test_the_store_lives_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "w1")
    topology = Sinks.model_validate({"chdb": {"path": "agg", "database": "city_a"}})
    assert settings.chdb_dir(topology.chdb.path) == tmp_path / "w1" / "agg"
    assert Settings(data_dir=tmp_path).chdb_dir(Sinks().chdb.path) == tmp_path / "chdb"


def test_an_absolute_topology_path_is_kept(tmp_path: Path) -> None:
    assert Settings(data_dir=Path("elsewhere")).chdb_dir(tmp_path / "agg") == tmp_path / "agg"


def test_cityops_chdb_path_wins_over_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYOPS_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CITYOPS_CHDB_PATH", str(tmp_path / "store"))
    settings = Settings()
    assert settings.chdb_dir("chdb") == tmp_path / "store"
    assert settings.data_dir == tmp_path / "state"
