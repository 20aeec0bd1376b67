"""The OCPP WebSocket gateway (issue #4)."""
