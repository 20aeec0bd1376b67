"""A fleet of simulated OCPP 1.6J chargers (``ocpp-pipeline simulate``).

``lives`` decides what every charger does (pure: a seeded random source in, plans and payloads
out); ``link`` speaks OCPP-J over one WebSocket; ``charger`` plays a charger's life over a link;
``fleet`` runs thousands of them, shows progress and writes what the pipeline should produce.
"""
