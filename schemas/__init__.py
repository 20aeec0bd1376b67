"""The public contracts of the pipeline, in one place, below everything else (``schemas`` imports no other package
of the project).

- :mod:`schemas.envelope` - the frame envelope on ``ocpp.frames.v1`` (and the check that holds its fast msgspec
  forms to it);
- :mod:`schemas.records` - the rows of every ClickHouse table, declared once: sessions, fault events, status
  changes, frames, outages, exclusions, attempts, daily aggregates (also the JSON on ``ocpp.sessions.v1`` /
  ``ocpp.faults.v1`` / ``ocpp.exclusions.v1``); :mod:`schemas.columns` - the column facts a record's fields carry;
- :mod:`schemas.tables` - the ClickHouse tables, made of the records, rendered to DDL (:mod:`schemas.ddl`) for the
  embedded engine and for a cluster; :mod:`schemas.migrations` - the versioned list of schema changes;
- :mod:`schemas.topics` - the Kafka topics as values;
- the vocabularies of the columns, shared by the worker and the reports: :mod:`schemas.flags` (``flags``),
  :mod:`schemas.attempt_failure` (``charge_attempts.failure``), :mod:`schemas.exclusions` (the exclusion event);
- :mod:`schemas.storable` - every row made insertable; :mod:`schemas.errors` - the errors of the contracts.
"""
