"""The ``ocpp-pipeline`` command line."""
