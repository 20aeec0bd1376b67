"""A fleet of simulated OCPP chargers, 1.6J and 2.0.1 (``ocpp-pipeline simulate``).

``lives`` decides what every charger does (pure: a seeded random source in, plans and 1.6 payloads
out); ``v201`` writes the same lives in OCPP 2.0.1; ``link`` speaks OCPP-J over one WebSocket;
``charger`` plays a charger's life over a link (``charger_v201``: in 2.0.1); ``fleet`` runs thousands
of them, shows progress and writes what the pipeline should produce. A share of chargers sign their meter
readings (``signing_plan`` chooses them, ``ocmf_meter`` is their meter, ``signed_truth`` what the pipeline
must make of what they sent).
"""
