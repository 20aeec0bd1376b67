"""The Faust workers that turn frames into sessions and faults (issue #5)."""
