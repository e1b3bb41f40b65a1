"""Backends are found by name in ``pipeline.sinks.backends``, cheaply, with no list to edit."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline.sinks.backends
from pipeline.sinks import StoreError, open_store
from pipeline.sinks.memory import MemoryStore
from pipeline.sinks.registry import discover
from tests.support.paths import ROOT

#: A complete backend, as a new one would be written: one module, nothing else edited.
TOY_BACKEND = '''
"""A throwaway backend for the registry tests."""

from pipeline.sinks.memory import MemoryStore
from pipeline.sinks.registry import Backend, setting


class ToyStore(MemoryStore):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


def open_toy(section, environ, overrides):
    return ToyStore(f"{setting(section, 'label', 'unset')}/{environ['TOY_REGION']}")


BACKEND = Backend(name="toy", open=open_toy)
'''


def _write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    importlib.invalidate_caches()


@pytest.fixture
def toy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A backend module dropped beside the real ones (the package's path gains a folder)."""
    name = f"toy_{uuid.uuid4().hex[:8]}"
    _write_module(tmp_path, name, TOY_BACKEND)
    package = pipeline.sinks.backends
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    yield name
    sys.modules.pop(f"{package.__name__}.{name}", None)


@pytest.fixture
def scratch_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An empty importable package of its own, for backends that are declared wrongly."""
    name = f"scratch_backends_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, folder


def test_todays_backends_are_found_by_name() -> None:
    backends = discover()
    assert sorted(backends) == ["chdb", "clickhouse"]
    assert all(backend.name == name for name, backend in backends.items())


def test_a_new_backend_module_is_found_and_opened_with_no_other_edit(toy_module: str) -> None:
    store = open_store(
        {"store": "toy", "toy": {"label": "from-topology"}}, {"TOY_REGION": "from-env"}
    )
    assert isinstance(store, MemoryStore)
    assert type(store).__module__ == f"pipeline.sinks.backends.{toy_module}"
    assert store.label == "from-topology/from-env"  # type: ignore[attr-defined]  # the toy's own field
    with pytest.raises(StoreError) as refused:
        open_store({"store": "nope"}, {})
    assert str(refused.value) == "unknown store 'nope' (expected chdb, clickhouse or toy)"


def test_an_unknown_store_lists_the_registered_ones() -> None:
    with pytest.raises(StoreError) as refused:
        open_store({"store": "x"}, {})
    assert str(refused.value) == "unknown store 'x' (expected chdb or clickhouse)"


def test_a_module_without_a_backend_declaration_is_refused_by_name(
    scratch_package: tuple[str, Path],
) -> None:
    package, folder = scratch_package
    _write_module(folder, "_shared", "HELPER = 1\n")
    _write_module(folder, "half_done", "def open_half(section, environ, overrides): ...\n")
    with pytest.raises(StoreError, match=rf"{package}\.half_done declares no BACKEND"):
        discover(package)


def test_two_modules_declaring_one_name_are_refused(scratch_package: tuple[str, Path]) -> None:
    package, folder = scratch_package
    for module in ("first", "second"):
        _write_module(folder, module, TOY_BACKEND)
    with pytest.raises(StoreError, match=rf"'toy' is declared twice \(in {package}\.second\)"):
        discover(package)


def test_finding_and_building_the_stores_imports_no_engine() -> None:
    """chDB costs ~0.5 s and ~260 MB to import: only a store's first use may pay it."""
    script = textwrap.dedent(
        """
        import sys
        from pipeline.sinks import open_store
        from pipeline.sinks.registry import discover

        found = sorted(discover())
        open_store({"store": "chdb"}, {})
        open_store({"store": "clickhouse"}, {"CITYOPS_CLICKHOUSE_URL": "http://db:8123"})
        engines = [m for m in sys.modules if m.split(".")[0] in ("chdb", "clickhouse_connect")]
        print(found, engines)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['chdb', 'clickhouse'] []"
