"""How many CPU cores this container may use: the default of ``ocpp-pipeline gateway --processes``.

The smaller of the CPUs the process may be scheduled on (``sched_getaffinity``: cpusets, ``taskset``)
and the cgroup v2 CPU quota (``cpu.max``: a Kubernetes CPU limit), rounded up, at least 1. A pod with
``limits.cpu: 1500m`` on a 16-core node gets 2 processes, not 16.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def quota_cores(cpu_max: str) -> float | None:
    """Cores granted by a cgroup v2 ``cpu.max`` line (``"<quota> <period>"`` or ``"max <period>"``);
    ``None`` when unlimited or unreadable."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cores(affinity: int, cpu_max: str | None) -> int:
    """The number of worker processes that can each have a core: ``min(affinity, ceil(quota))``, ≥ 1."""
    quota = quota_cores(cpu_max) if cpu_max is not None else None
    cores = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, cores)


def available_cores(cpu_max_file: Path = CGROUP_CPU_MAX) -> int:
    """:func:`usable_cores` of this process."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count() or 1
    try:
        cpu_max = cpu_max_file.read_text()
    except OSError:
        cpu_max = None
    return usable_cores(affinity, cpu_max)
