"""Errors of the infrastructure layer.

    InfraError
    ├── BrokerError            the local Kafka broker could not be fetched, started or stopped
    │   └── PrerequisiteMissing  Java 17+ or Maven is not installed
    ├── TopicError             a topic could not be created or does not match its definition
    └── ClickHouseError        a ClickHouse connection or migration failed

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


class ClickHouseError(InfraError):
    pass
