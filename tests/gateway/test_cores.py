"""How many gateway processes a container gets: CPU affinity and the cgroup quota, whichever is smaller."""

from __future__ import annotations

from pathlib import Path

import multiprocessing

import pytest

from gateway.cores import available_cores, quota_cores, usable_cores
from gateway.host_view import HostView


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("max 100000", None),  # no limit
    ("200000 100000", 2.0),  # limits.cpu: 2
    ("150000 100000", 1.5),  # limits.cpu: 1500m
    ("50000 100000", 0.5),
    ("garbage", None),
    ("0 100000", None),
    ("-1 100000", None),
    ("", None),
])
def test_quota_cores(cpu_max: str, expected: float | None) -> None:
    assert quota_cores(cpu_max) == expected


@pytest.mark.parametrize(("affinity", "cpu_max", "expected"), [
    (16, None, 16),  # no cgroup v2 file
    (16, "max 100000", 16),
    (16, "150000 100000", 2),  # a 1500m limit on a big node: 2 processes, not 16
    (2, "800000 100000", 2),  # a cpuset smaller than the quota
    (4, "50000 100000", 1),  # half a core: still one process
    (1, None, 1),
])
def test_usable_cores(affinity: int, cpu_max: str | None, expected: int) -> None:
    assert usable_cores(affinity, cpu_max) == expected


def test_available_cores_reads_the_quota_file(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert available_cores(cpu_max) == 1
    assert available_cores(tmp_path / "missing") >= 1


def test_the_host_is_healthy_when_all_live_and_ready_when_all_reach_kafka() -> None:
    host = HostView.create(3, multiprocessing.get_context("spawn"))
    assert not host.healthy() and not host.ready()  # nothing started yet
    for index in range(3):
        host.report(index, kafka_up=True)
    assert host.healthy() and host.ready()
    host.report(1, kafka_up=False)
    assert host.healthy() and not host.ready()
    host.mark_dead(2)
    assert not host.healthy()
    assert host.describe() == "2/3 processes alive, Kafka up in 1"
