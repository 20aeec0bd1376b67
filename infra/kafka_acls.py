"""Who may do what on the bus: one identity per component, each with only the ACLs it needs.

This table is the one source of the pipeline's Kafka permissions. It is rendered twice: as ACL bindings
that ``ocpp-pipeline kafka start --secure`` applies to the local broker (:mod:`infra.acl_admin`), and as
Strimzi ``KafkaUser`` resources (:mod:`infra.k8s_users`, ``infra/k8s/base/kafka-users.yaml``); tests keep
both equal to it. :func:`permits` evaluates it the way Kafka's ``StandardAuthorizer`` does, so the
least-privilege promises (only the gateway writes frames, the alerting reader reads faults only) are
stated as properties of the table and checked against the real broker.

What each client actually asks Kafka for (found by running each against a broker with these ACLs):

- gateway (an idempotent producer): Metadata (Describe) and Produce (Write) on ``ocpp.frames.v1``, and
  InitProducerId, which since Kafka 3.0 (KIP-679) needs Write on any topic instead of the cluster's
  IdempotentWrite: no cluster permission at all.
- worker (Faust): its consumer group (JoinGroup, SyncGroup, OffsetCommit, OffsetFetch: Read on the
  group ``<app id>``), Fetch on frames, exclusions and meter keys (the meter keys read whole by every worker
  without a group: Read on the topic only), Produce on sessions and faults, and its own
  internal topics - the table's changelog and the assignor's leader topic, both named ``<app id>-...``:
  Faust creates them when missing (CreateTopics), reads them (recovery, the leader's assignment) and
  writes the changelog, so Create, Read, Write and Describe on the prefix ``<app id>-`` and nothing wider.
  Its producer is not idempotent and uses no transactions.
- operator (``ocpp-pipeline outages exclude``, ``ocpp-pipeline keys``): Produce on ``ocpp.exclusions.v1`` and
  ``ocpp.meter_keys.v1`` (who may register a meter key may make a forged reading verify: SECURITY.md).
- alerting reader: Fetch on ``ocpp.faults.v1`` with consumer groups named ``ocpp-alerting...``.

Nobody but the cluster's administrators may create or alter the contract topics: they are declared
(Strimzi ``KafkaTopic``; locally, created by ``kafka start --secure`` as the administrator).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from schemas.topics import EXCLUSIONS, FAULTS, FRAMES, METER_KEYS, SESSIONS

EXCLUSIONS_TOPIC = EXCLUSIONS.name
DEFAULT_APP_ID = "ocpp-processors"  # OCPP_WORKER_APP_ID's default


class ResourceType(Enum):
    """Kafka's resource types: the value is Strimzi's spelling, ``code`` the wire's (``ResourceType``)."""

    TOPIC = ("topic", 2)
    GROUP = ("group", 3)
    CLUSTER = ("cluster", 4)
    TRANSACTIONAL_ID = ("transactionalId", 5)

    def __init__(self, strimzi: str, code: int) -> None:
        self.strimzi = strimzi
        self.code = code


class PatternType(Enum):
    LITERAL = ("literal", 3)
    PREFIXED = ("prefix", 4)

    def __init__(self, strimzi: str, code: int) -> None:
        self.strimzi = strimzi
        self.code = code


class Operation(Enum):
    """Kafka's ACL operations (``AclOperation``): Strimzi's spelling and the wire code."""

    ALL = ("All", 2)
    READ = ("Read", 3)
    WRITE = ("Write", 4)
    CREATE = ("Create", 5)
    DELETE = ("Delete", 6)
    ALTER = ("Alter", 7)
    DESCRIBE = ("Describe", 8)
    CLUSTER_ACTION = ("ClusterAction", 9)
    DESCRIBE_CONFIGS = ("DescribeConfigs", 10)
    ALTER_CONFIGS = ("AlterConfigs", 11)
    IDEMPOTENT_WRITE = ("IdempotentWrite", 12)

    def __init__(self, strimzi: str, code: int) -> None:
        self.strimzi = strimzi
        self.code = code


# What an allowed operation implies (Kafka's AclEntry.supportedOperations / implied operations): Describe is
# granted with Read, Write, Delete and Alter; DescribeConfigs with AlterConfigs.
_IMPLIES: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}
CLUSTER_NAME = "kafka-cluster"  # the one name of the cluster resource


@dataclass(frozen=True)
class Resource:
    type: ResourceType
    name: str
    pattern: PatternType = PatternType.LITERAL

    def matches(self, resource_type: ResourceType, name: str) -> bool:
        """True if this pattern covers the resource ``name`` of ``resource_type`` (Kafka's matching rules)."""
        if resource_type is not self.type:
            return False
        if self.pattern is PatternType.PREFIXED:
            return name.startswith(self.name)
        return self.name in (name, "*")


@dataclass(frozen=True)
class Grant:
    resource: Resource
    operations: frozenset[Operation]


@dataclass(frozen=True)
class Identity:
    """One component's Kafka user (SCRAM user name, or the CN of its client certificate)."""

    name: str
    purpose: str
    grants: tuple[Grant, ...]

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


@dataclass(frozen=True)
class Binding:
    """One ACL binding as Kafka stores it: allow ``operation`` on ``resource`` to ``principal`` from any host."""

    principal: str
    resource: Resource
    operation: Operation

    def sort_key(self) -> tuple[str, int, str, int, int]:
        return (self.principal, self.resource.type.code, self.resource.name, self.resource.pattern.code,
                self.operation.code)


def _topic(name: str, *operations: Operation) -> Grant:
    return Grant(Resource(ResourceType.TOPIC, name), frozenset(operations))


GATEWAY = "ocpp-gateway"
WORKER = "ocpp-worker"
OPERATOR = "ocpp-operator"
ALERTING = "ocpp-alerting"


def identities(topic_prefix: str = "", app_id: str = DEFAULT_APP_ID) -> tuple[Identity, ...]:
    """The pipeline's identities and their grants, for topics named with ``topic_prefix``
    (``OCPP_KAFKA_TOPIC_PREFIX``) and a worker whose Faust app id is ``app_id`` (``OCPP_WORKER_APP_ID``)."""
    read, write, describe, create = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.CREATE
    frames, sessions, faults = (topic_prefix + t.name for t in (FRAMES, SESSIONS, FAULTS))
    exclusions = topic_prefix + EXCLUSIONS_TOPIC
    meter_keys = topic_prefix + METER_KEYS.name
    return (
        Identity(GATEWAY, "the only writer of charger frames and connection events",
                 (_topic(frames, write, describe),)),
        Identity(WORKER, "reads frames, exclusions and meter keys; writes sessions, faults and its own state", (
            _topic(frames, read, describe),
            _topic(exclusions, read, describe),
            _topic(meter_keys, read, describe),
            _topic(sessions, write, describe),
            _topic(faults, write, describe),
            # Faust's changelog and leader topics: created when missing, read on recovery, written.
            Grant(Resource(ResourceType.TOPIC, f"{app_id}-", PatternType.PREFIXED),
                  frozenset({create, read, write, describe})),
            Grant(Resource(ResourceType.GROUP, app_id), frozenset({read})),
        )),
        Identity(OPERATOR, "records operator decisions (outage exclusions, meter keys)", (
            _topic(exclusions, write, describe),
            _topic(meter_keys, write, describe),
        )),
        Identity(ALERTING, "pages people: reads fault events only", (
            _topic(faults, read, describe),
            Grant(Resource(ResourceType.GROUP, ALERTING, PatternType.PREFIXED), frozenset({read})),
        )),
    )


def identity(name: str, table: Iterable[Identity]) -> Identity:
    for entry in table:
        if entry.name == name:
            return entry
    raise KeyError(f"no Kafka identity {name!r}")


def bindings(table: Iterable[Identity]) -> frozenset[Binding]:
    """Every ACL binding of ``table`` (what the broker holds once it is applied)."""
    return frozenset(Binding(entry.principal, grant.resource, operation)
                     for entry in table for grant in entry.grants for operation in grant.operations)


def permits(held: Iterable[Binding], principal: str, operation: Operation, resource_type: ResourceType,
            name: str, *, super_users: Iterable[str] = ()) -> bool:
    """Whether Kafka's ``StandardAuthorizer`` allows ``principal`` to do ``operation`` on a resource, given the
    allow bindings ``held`` (no deny bindings exist here; ``allow.everyone.if.no.acl.found`` is false)."""
    if principal in set(super_users):
        return True
    wanted = {operation, Operation.ALL} | _IMPLIES.get(operation, frozenset())
    return any(b.principal == principal and b.operation in wanted and b.resource.matches(resource_type, name)
               for b in held)
