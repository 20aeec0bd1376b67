"""Apply the identities of :mod:`infra.kafka_acls` to a broker through Kafka's admin API: SCRAM users and
ACL bindings. What ``kafka start --secure`` does for the local broker (Strimzi's User Operator does the
same from ``KafkaUser`` resources on Kubernetes).

Runs as a super user (the local administrator's mutual-TLS certificate). Idempotent: every start makes the
broker hold exactly the table: SCRAM credentials are upserted (the password of each identity's ``.env``
file, so deleting a file and starting again rotates it), missing bindings are created and bindings of the
pipeline's principals that the table no longer lists are deleted. Bindings of other principals are left alone.

aiokafka declares the ACL requests (CreateAcls v1, DescribeAcls v1, DeleteAcls v1: Kafka 4 still serves them),
though its builders put one binding in each request: the builders here send them all in one (each request is a
round trip through the controller). It has nothing for SCRAM credentials: ``AlterUserScramCredentials``
(KIP-554, API key 51, a flexible version only) is declared here with aiokafka's own protocol types.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields,
)

from infra.errors import BrokerError
from infra.kafka_close import settle
from infra.kafka_acls import Binding, Identity, Operation, PatternType, Resource, ResourceType, bindings
from infra.settings import KafkaSettings

SCRAM_SHA_512 = 2  # ScramMechanism code (1 is SCRAM-SHA-256)
SCRAM_ITERATIONS = 8192  # Kafka's minimum is 4096
_ANY = 1  # the ANY value of resource type, pattern type, operation and permission filters
_ALLOW = 3
_NO_ERROR = 0


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(
            ("user", CompactString("utf-8")),
            ("error_code", Int16),
            ("error_message", CompactString("utf-8")),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(
            ("name", CompactString("utf-8")),
            ("mechanism", Int8),
            ("tags", TaggedFields),
        )),
        ("upsertions", CompactArray(
            ("name", CompactString("utf-8")),
            ("mechanism", Int8),
            ("iterations", Int32),
            ("salt", CompactBytes),
            ("salted_password", CompactBytes),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


_AlterScramStruct: TypeAlias = AlterUserScramCredentialsRequest_v0


class AlterUserScramCredentialsRequest(Request[_AlterScramStruct]):
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes]]) -> None:
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramStruct]) -> _AlterScramStruct:
        return request_struct_class([], [(*u, {}) for u in self._upsertions], {})


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, creations: list[tuple[int, str, int, str, str, int, int]]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: list[tuple[int, str, int, str, str, int, int]]) -> None:
        self._filters = filters

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._filters)


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's SaltedPassword (RFC 5802: Hi() is PBKDF2 with HMAC-SHA-512 here): what the broker stores,
    with the salt and iterations, instead of the password."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


@dataclass(frozen=True)
class Provisioned:
    users: tuple[str, ...]
    created: int
    deleted: int

    def describe(self) -> str:
        return (f"{len(self.users)} Kafka users ({', '.join(self.users)}); ACL bindings: {self.created} created, "
                f"{self.deleted} removed")


async def provision(admin_settings: KafkaSettings, table: Iterable[Identity], passwords: Mapping[str, str]) -> Provisioned:
    """Make the broker hold ``table``: each identity a SCRAM-SHA-512 user with its password in ``passwords``,
    and exactly the table's ACL bindings for these principals."""
    table = tuple(table)
    admin = AIOKafkaAdminClient(**admin_settings.client_options(), request_timeout_ms=30_000)
    await admin.start()
    try:
        await _upsert_users(admin, {entry.name: passwords[entry.name] for entry in table})
        wanted = bindings(table)
        principals = {entry.principal for entry in table}
        held = {b for b in await describe_bindings(admin) if b.principal in principals}
        missing = sorted(wanted - held, key=Binding.sort_key)
        stale = sorted(held - wanted, key=Binding.sort_key)
        if missing:
            response = await admin._send_request(_CreateAcls([_fields(b) for b in missing]))
            _check("creating", missing, [(code, message) for code, message in response.creation_responses])
        if stale:
            response = await admin._send_request(_DeleteAcls([_fields(b) for b in stale]))
            _check("deleting", stale, [(r[0], r[1]) for r in response.filter_responses])
    finally:
        await admin.close()
        await settle(admin_settings)
    return Provisioned(tuple(entry.name for entry in table), len(missing), len(stale))


async def _upsert_users(admin: AIOKafkaAdminClient, passwords: Mapping[str, str]) -> None:
    upsertions = []
    for name, password in passwords.items():
        salt = secrets.token_bytes(32)
        upsertions.append((name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted_password(password, salt)))
    response = await admin._send_request(AlterUserScramCredentialsRequest(upsertions))
    failed = [f"{r[0]}: {for_code(r[1]).__name__} {r[2] or ''}".rstrip() for r in response.results if r[1] != _NO_ERROR]
    if failed:
        raise BrokerError("the broker refused SCRAM credentials: " + "; ".join(failed))


async def describe_bindings(admin: AIOKafkaAdminClient) -> set[Binding]:
    """Every allow binding the cluster holds (for the principals and resources this module knows)."""
    response = await admin._send_request(DescribeAclsRequest(_ANY, None, _ANY, None, None, _ANY, _ANY))  # type: ignore[arg-type]
    if response.error_code != _NO_ERROR:
        raise BrokerError(f"describing ACLs failed: {for_code(response.error_code).__name__} {response.error_message or ''}")
    types = {t.code: t for t in ResourceType}
    patterns = {p.code: p for p in PatternType}
    operations = {o.code: o for o in Operation}
    held = set()
    for resource_type, name, pattern, acls in response.resources:
        if resource_type not in types or pattern not in patterns:
            continue
        resource = Resource(types[resource_type], name, patterns[pattern])
        for principal, host, operation, permission in acls:
            if permission == _ALLOW and host == "*" and operation in operations:
                held.add(Binding(principal, resource, operations[operation]))
    return held


def _fields(binding: Binding) -> tuple[int, str, int, str, str, int, int]:
    r = binding.resource
    return (r.type.code, r.name, r.pattern.code, binding.principal, "*", binding.operation.code, _ALLOW)


def _check(doing: str, sent: list[Binding], results: list[tuple[int, Any]]) -> None:
    for binding, (code, message) in zip(sent, results):
        if code != _NO_ERROR:
            raise BrokerError(f"{doing} the ACL {binding} failed: {for_code(code).__name__} {message or ''}".rstrip())

