"""cityops: a streaming core for unified city operations (see README.md and docs/).

The package root holds only what every entry point shares and what costs nothing to import:
the installed version (the CLI's ``--version``, the worker's ``cityops_worker_info``).
It imports nothing of the package and no I/O library, so it sits on the lowest floor.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["cityops_version"]


def cityops_version() -> str:
    """The installed package's version ("unknown" from a bare checkout)."""
    try:
        return version("cityops")
    except PackageNotFoundError:
        return "unknown"
