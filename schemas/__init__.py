"""The public contracts of the pipeline, in one place.

- :mod:`schemas.envelope` - the frame envelope on ``ocpp.frames.v1``;
- :mod:`schemas.records` - sessions, fault events, status changes and frame rows
  (ClickHouse rows and the JSON on ``ocpp.sessions.v1`` / ``ocpp.faults.v1``);
- :mod:`schemas.topics` - the Kafka topics as values;
- :mod:`schemas.tables` - the ClickHouse tables as values, rendered to DDL for the embedded
  engine and for a cluster;
- :mod:`schemas.migrations` - the versioned list of schema changes.
"""
