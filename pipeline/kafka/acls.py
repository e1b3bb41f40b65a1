"""Kafka ACLs through the admin protocol: describe, create and delete, and converge a
principal set onto a wanted list.

Why here and not Kafka's own `kafka-acls` tool: the wanted ACLs follow from a topology
(topic names, areas), which Python knows; the same code applies them to the local broker,
a compose cluster or any Kafka with a StandardAuthorizer. aiokafka's admin client has no
ACL calls, but its protocol module has the requests (v1, which Kafka 4 still serves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest,
)
from aiokafka.protocol.api import Request

from pipeline.kafka.clients import Connection, client_options

__all__ = [
    "Acl",
    "AclError",
    "AclReport",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceType",
    "apply_acls",
    "describe_acls",
]

_CHUNK = 500  # bindings per request: small enough for any broker's request size


class ResourceType(IntEnum):
    """Kafka's resource type codes (AclResourceType)."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class PatternType(IntEnum):
    """How a resource name matches: exactly (LITERAL, or "*" for all) or as a prefix."""

    ANY = 1
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's ACL operation codes (AclOperation)."""

    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(IntEnum):
    """Kafka's ACL permission codes."""

    ANY = 1
    DENY = 2
    ALLOW = 3


@dataclass(frozen=True, order=True)
class Acl:
    """One ACL binding: `principal` (``User:<name>``) may `operation` on a resource."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation
    permission: Permission = Permission.ALLOW
    host: str = "*"

    def describe(self) -> str:
        """One readable line, e.g. ``User:unit-310101 ALLOW WRITE TOPIC cityops.x (LITERAL)``."""
        return (
            f"{self.principal} {self.permission.name} {self.operation.name} "
            f"{self.resource_type.name} {self.resource_name} ({self.pattern.name})"
        )


class AclError(Exception):
    """The broker refused an ACL operation (no authorizer, not allowed, bad binding)."""


_HINTS = {
    31: "not allowed: connect as a super user (e.g. User:admin)",
    54: "the broker has no authorizer (authorizer.class.name is not set)",
}


def _check(code: int, message: str | None, what: str) -> None:
    if code:
        hint = _HINTS.get(code, message or "")
        msg = f"{what} failed: error {code}{f' ({hint})' if hint else ''}"
        raise AclError(msg)


@dataclass
class AclReport:
    """What :func:`apply_acls` changed and what was already in place."""

    created: list[Acl] = field(default_factory=list)
    deleted: list[Acl] = field(default_factory=list)
    kept: list[Acl] = field(default_factory=list)


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped
    """CreateAcls v1 with many bindings in one request (aiokafka's class sends one)."""

    API_KEY = 30

    def __init__(self, acls: Sequence[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> Any:
        return request_struct_class([_binding(acl) for acl in self.acls])


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped
    """DeleteAcls v1 with one exact filter per binding to delete."""

    API_KEY = 31

    def __init__(self, acls: Sequence[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> Any:
        return request_struct_class([_binding(acl) for acl in self.acls])


def _binding(acl: Acl) -> tuple[int, str, int, str, str, int, int]:
    return (
        acl.resource_type,
        acl.resource_name,
        acl.pattern,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission,
    )


def _admin(connection: Connection) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(connection), request_timeout_ms=30_000)


async def _describe(admin: AIOKafkaAdminClient) -> list[Acl]:
    request = DescribeAclsRequest(
        ResourceType.ANY, None, PatternType.ANY, None, None, Operation.ANY, Permission.ANY
    )
    response = await admin._send_request(request)  # noqa: SLF001  # no public ACL call
    _check(response.error_code, response.error_message, "describing ACLs")
    return sorted(
        Acl(
            principal=principal,
            resource_type=ResourceType(resource_type),
            resource_name=name,
            pattern=PatternType(pattern),
            operation=Operation(operation),
            permission=Permission(permission),
            host=host,
        )
        for resource_type, name, pattern, entries in response.resources
        for principal, host, operation, permission in entries
    )


async def describe_acls(connection: Connection) -> list[Acl]:
    """Every ACL binding the cluster holds."""
    admin = _admin(connection)
    await admin.start()
    try:
        return await _describe(admin)
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, acls: Sequence[Acl]) -> None:
    for start in range(0, len(acls), _CHUNK):
        chunk = acls[start : start + _CHUNK]
        response = await admin._send_request(_CreateAcls(chunk))  # noqa: SLF001
        for acl, (code, message) in zip(chunk, response.creation_responses, strict=True):
            _check(code, message, f"creating {acl.describe()}")


async def _delete(admin: AIOKafkaAdminClient, acls: Sequence[Acl]) -> None:
    for start in range(0, len(acls), _CHUNK):
        chunk = acls[start : start + _CHUNK]
        response = await admin._send_request(_DeleteAcls(chunk))  # noqa: SLF001
        for acl, (code, message, _matched) in zip(chunk, response.filter_responses, strict=True):
            _check(code, message, f"deleting {acl.describe()}")


async def apply_acls(
    connection: Connection, wanted: Iterable[Acl], manages: Callable[[str], bool]
) -> AclReport:
    """Make the ACLs of every principal that `manages` accepts exactly `wanted`: create
    what is missing, delete what is no longer wanted, leave other principals' ACLs alone.
    Idempotent: a second run creates and deletes nothing."""
    target = set(wanted)
    admin = _admin(connection)
    await admin.start()
    try:
        current = {acl for acl in await _describe(admin) if manages(acl.principal)}
        report = AclReport(
            created=sorted(target - current),
            deleted=sorted(current - target),
            kept=sorted(target & current),
        )
        await _create(admin, report.created)
        await _delete(admin, report.deleted)
    finally:
        await admin.close()
    return report
