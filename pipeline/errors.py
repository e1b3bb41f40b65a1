"""Errors that cross layers: the root of cityops' own exceptions.

Why a module of its own: a stop that interrupts a retry loop is raised deep inside the
I/O edges (the store writer, the batch sender) and handled by the worker's agents, so it
must live below both.
"""

from __future__ import annotations


class CityopsError(Exception):
    """The root of cityops' own exceptions."""


class StoppedMidBatch(CityopsError):  # noqa: N818 - a stop, not an error
    """The worker is stopping while a batch still waits for something that is down."""
