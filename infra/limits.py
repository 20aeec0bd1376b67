"""Process limits: one open file per WebSocket, so a gateway (or a simulated fleet) with tens of
thousands of connections needs more than the usual soft limit of 1,024."""

from __future__ import annotations

import resource


def raise_open_files_limit(wanted: int | None = None) -> int:
    """Raise the soft open-files limit toward ``wanted`` (default: the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else min(hard, wanted) if hard != resource.RLIM_INFINITY else wanted
    if target != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
