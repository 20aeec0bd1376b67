"""Signed meter values (issue 25; Eichrecht, OCMF): pure reading, verifying and judging, no I/O.

Modules, bottom to top:

- :mod:`~signed_meter.model` - formats, statuses, flags, readings and records (typed values)
- :mod:`~signed_meter.limits` - size caps applied before any parsing
- :mod:`~signed_meter.errors` - the package's exceptions (raised inside, caught at its boundary)
- :mod:`~signed_meter.curves`, :mod:`~signed_meter.keys` - OCMF's algorithms; public keys in every shape
- :mod:`~signed_meter.ocmf`, :mod:`~signed_meter.alfen`, :mod:`~signed_meter.record` - reading records
- :mod:`~signed_meter.signature` - one record, one key: does the signature hold
- :mod:`~signed_meter.arrival` - signed values as OCPP 1.6 / 2.0.1 sampled values carry them
- :mod:`~signed_meter.registry` - keys by charge point (and connector), built from operator events
- :mod:`~signed_meter.verification` - the verdict on one signed value
- :mod:`~signed_meter.session` - the per-session verdict, an order-independent reducer
- :mod:`~signed_meter.export` - what a driver's transparency software reads (S.A.F.E. XML, OCMF + key)

SIGNED_METER_VALUES.md says how the pipeline wires them in.
"""
