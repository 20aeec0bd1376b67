"""Errors of the infrastructure layer.

    InfraError
    ├── BrokerError            the local Kafka broker could not be fetched, started or stopped
    │   └── PrerequisiteMissing  Java 17+ or Maven is not installed
    ├── TopicError             a topic could not be created or is not usable yet (retriable)
    │   ├── TopicRefused         Kafka refused the topic for a reason waiting cannot fix (not retriable)
    │   └── TopicNotPermitted    this identity may not see or create the topic (its ACLs, or an administrator)
    └── ClickHouseError        a ClickHouse connection or migration failed
        ├── InsertFailed       an insert failed; ``retriable`` says whether trying again can help
        ├── QueryRefused       a read query refused: not one read statement, a limit, the engine's error
        └── ReadUnavailable    no way to read: the folder held by a worker that does not answer, not
                               migrated, no read DSN, a token refused

``retriable`` says whether trying the same thing again later can succeed.
"""

from __future__ import annotations


class InfraError(Exception):
    retriable: bool = False


class BrokerError(InfraError):
    pass


class PrerequisiteMissing(BrokerError):
    pass


class TopicError(InfraError):
    retriable = True


class TopicRefused(TopicError):
    """Kafka refused to create a topic: authorisation, policy, an invalid name or configuration."""

    retriable = False


class TopicNotPermitted(TopicError):
    """This Kafka identity may not see a topic, or may not create one that is missing. Retriable: on a cluster
    whose ACLs and topics are applied by operators (Strimzi), they may come a moment after the service starts."""


class ClickHouseError(InfraError):
    pass


class InsertFailed(ClickHouseError):
    """An insert into ClickHouse failed.

    ``retriable`` is True when the cause can pass (the server unreachable, a timeout, too many parts):
    the sink backs off and tries the same batch again. It is False when the batch or the schema is
    wrong (a value out of its column's range, text that is not UTF-8, an unknown table or column, the
    credentials refused): the same batch would fail forever, so the worker stops and says why instead.
    """

    def __init__(self, message: str, *, table: str, retriable: bool, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.table = table
        self._retriable = retriable
        self.cause = cause

    @property
    def retriable(self) -> bool:  # type: ignore[override]
        return self._retriable


class QueryRefused(ClickHouseError):
    """A query on the read path was refused, with a one-line reason: not exactly one read statement (the
    statement check), or the engine's own error (a limit reached, a syntax error, readonly)."""


class ReadUnavailable(ClickHouseError):
    """The read path cannot be used, with a one-line reason (the folder held by a worker that does not answer,
    a database never migrated, no read DSN, a token refused)."""
