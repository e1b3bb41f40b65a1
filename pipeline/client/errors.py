"""What the client raises: one root, a child per thing a service must handle."""

from __future__ import annotations

__all__ = ["ClientError", "IncompatibleSchema", "NoReply"]


class ClientError(Exception):
    """Root of the client's errors."""


class IncompatibleSchema(ClientError):
    """A record on an incident topic is not an incident this client can read (another
    schema version, or not an incident at all): upgrade the client, do not skip it."""


class NoReply(ClientError):
    """No reply to an update came within the timeout (is a worker running?)."""
