"""Infrastructure the pipeline runs on: settings, the local Kafka broker, topic administration,
ClickHouse clients and migrations. Exceptions derive from :class:`infra.errors.InfraError`."""
