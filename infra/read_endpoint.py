"""The worker's read endpoint, published inside the ClickHouse folder it holds.

chDB lets one process hold a folder. The worker that holds one writes ``sql-endpoint.json`` into it: where
its ``/sql`` listens, which folder and database it serves, its process (pid and start time), and the bearer
token when it generated one. The file is owner-only (0600): reading it is proof of being the folder's owner,
which is what makes a generated token a secure default (``make run`` needs no setup; ``sql`` just works for
the user who runs the pipeline). The worker removes it on a clean stop; a worker killed leaves it, and
:func:`alive` tells: its pid is gone, or now belongs to another process (a different start time).

``ocpp-pipeline sql`` reads this file for the folder it is asked about, never a guess by port.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.errors import ReadUnavailable

FILE_NAME = "sql-endpoint.json"
VERSION = 1


@dataclass(frozen=True)
class Endpoint:
    host: str  # where a client on this machine connects (loopback when the listener binds every address)
    port: int
    folder: str  # the ClickHouse folder the worker holds (real path)
    database: str
    pid: int
    pid_started: int | None  # the process's start time (clock ticks since boot), None where unknown
    token: str | None  # the generated token; None when OCPP_WORKER_SQL_TOKEN is configured (never written here)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/sql"


def connect_host(bound: str) -> str:
    """The address a local client uses for a listener bound to ``bound``."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(bound, bound)


def process_started(pid: int) -> int | None:
    """The start time of process ``pid`` (Linux ``/proc/<pid>/stat`` field 22), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def folder_holder(folder: Path) -> int | None:
    """The pid of the process whose ClickHouse engine holds ``folder`` (its lock on ``status``, from
    ``/proc/locks``); None when nobody does, or where that cannot be known."""
    try:
        inode = (folder / "status").stat().st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in locks.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a blocked waiter's line has "->" after the index)
        if len(fields) >= 6 and fields[1] != "->" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4])
    return None


def publish(folder: Path, endpoint: Endpoint) -> Path:
    """Write the file atomically, owner-only from its first byte."""
    path = folder / FILE_NAME
    temporary = folder / f".{FILE_NAME}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, json.dumps({"v": VERSION, **asdict(endpoint)}, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def withdraw(folder: Path, pid: int) -> None:
    """Remove the file if it is this process's (a newer worker's is left alone)."""
    try:
        found = read(folder)
    except ReadUnavailable:
        return
    if found is not None and found.pid == pid:
        (folder / FILE_NAME).unlink(missing_ok=True)


def read(folder: Path) -> Endpoint | None:
    """The published endpoint of ``folder``; None when no worker published one."""
    path = folder / FILE_NAME
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except PermissionError:
        raise ReadUnavailable(f"{path} is readable by its owner only (the user who runs the worker)") from None
    except (OSError, ValueError) as exc:
        raise ReadUnavailable(f"{path} cannot be read ({exc}): remove it if no worker runs") from None
    try:
        values.pop("v", None)
        return Endpoint(**values)
    except TypeError:
        raise ReadUnavailable(f"{path} is not an endpoint file this version writes: remove it if no worker "
                              "runs") from None


def alive(endpoint: Endpoint) -> bool:
    """The process that published ``endpoint`` still runs (the same process: pid and start time)."""
    try:
        os.kill(endpoint.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = process_started(endpoint.pid)
    return endpoint.pid_started is None or started is None or started == endpoint.pid_started
