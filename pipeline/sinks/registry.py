"""Store backends by name: every module in ``pipeline.sinks.backends`` that declares one.

Why discovery rather than a list: a new backend is one new module (plus its topology
section), and nothing here changes. A backend module declares, at module level::

    BACKEND = Backend(name="mystore", open=open_mystore)

where ``open_mystore(section, environ, overrides)`` builds the store from the topology's
``sinks.<name>`` section (a pydantic model, a mapping, or None when absent), the process
environment and the process-level ``StoreOverrides``. Discovery imports the backend
modules, so they must import their engine lazily, inside the factory or the store (chDB
costs ~0.5 s and ~260 MB); nothing is connected or opened before ``open`` is called.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.sinks.base import AggregateStore, StoreError

#: Where backends are discovered (every module directly in that package).
BACKENDS_PACKAGE = "pipeline.sinks.backends"


@dataclass(frozen=True)
class StoreOverrides:
    """Process-level settings that win over the topology (from ``Settings``, the CLI).

    ``chdb_path`` (``Settings.chdb_path``, env CITYOPS_CHDB_PATH) overrides
    ``sinks.chdb.path``, so the worker and the CLI open the same directory.
    """

    chdb_path: Path | None = None


#: Builds a store from its ``sinks.<name>`` section, the environment and the overrides.
StoreFactory = Callable[[Any, Mapping[str, str], StoreOverrides], AggregateStore]


@dataclass(frozen=True)
class Backend:
    """One store backend: the name ``sinks.store`` uses, and how to build it."""

    name: str
    open: StoreFactory


def discover(package: str = BACKENDS_PACKAGE) -> dict[str, Backend]:
    """Every backend declared in ``package``, by name (imports the modules, not engines)."""
    root = importlib.import_module(package)
    found: dict[str, Backend] = {}
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda item: item.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        backend = getattr(module, "BACKEND", None)
        if not isinstance(backend, Backend):
            msg = f"{module.__name__} declares no BACKEND = Backend(name=..., open=...)"
            raise StoreError(msg)
        if backend.name in found:
            msg = f"store backend {backend.name!r} is declared twice (in {module.__name__})"
            raise StoreError(msg)
        found[backend.name] = backend
    return found


def open_backend(
    name: str,
    sinks: Any,
    environ: Mapping[str, str],
    overrides: StoreOverrides,
) -> AggregateStore:
    """The store of backend ``name``, built from its section of ``sinks``."""
    backends = discover()
    backend = backends.get(name)
    if backend is None:
        msg = f"unknown store {name!r} (expected {_one_of(sorted(backends))})"
        raise StoreError(msg)
    return backend.open(setting(sinks, name, None), environ, overrides)


def setting(section: Any, name: str, default: Any) -> Any:
    """Read a field from a pydantic model or a mapping (the topology section's shape)."""
    if section is None:
        return default
    if isinstance(section, Mapping):
        value = section.get(name, default)
    else:
        value = getattr(section, name, default)
    return default if value is None else value


def _one_of(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(names) <= 1:
        return "".join(names) or "no backend"
    return f"{', '.join(names[:-1])} or {names[-1]}"
