"""``ocpp-pipeline worker`` with faults injected at the ClickHouse client boundary:

- while the file named by ``FLAKY_CLICKHOUSE_DOWN`` exists, every insert fails as an unreachable server
  would (``ConnectionRefusedError``);
- while the file named by ``FLAKY_CLICKHOUSE_HOLD`` exists, an insert of frame rows is done and then does not
  return (a slow server's answer): the file ``<HOLD>.held`` says one is held.

Reads still work (the test asks the worker how far it got).

    python -m tests.reliability.flaky_clickhouse_worker   # same settings as the worker
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from infra import clickhouse
from schemas.tables import FRAMES

DOWN = Path(os.environ.get("FLAKY_CLICKHOUSE_DOWN", "/nonexistent/down"))
HOLD = Path(os.environ.get("FLAKY_CLICKHOUSE_HOLD", "/nonexistent/hold"))
_connect = clickhouse.connect


class FlakyClient:
    def __init__(self, client: Any) -> None:
        self._client = client

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        if DOWN.exists():
            raise ConnectionRefusedError("injected: ClickHouse unreachable")
        done = self._client.insert(*args, **kwargs)
        if args[0] == FRAMES.name and HOLD.exists():
            HOLD.with_name(HOLD.name + ".held").touch()
            while HOLD.exists():  # the sink inserts in a thread: the worker's event loop goes on
                time.sleep(0.05)
        return done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def connect(settings: Any) -> FlakyClient:
    return FlakyClient(_connect(settings))


clickhouse.connect = connect


def dump_tasks(signum: int, frame: Any) -> None:
    """SIGUSR1: print every asyncio task's stack (to see where a stalled worker waits)."""
    import asyncio
    import faulthandler

    faulthandler.dump_traceback(all_threads=True)
    loop = asyncio._get_running_loop()
    for task in asyncio.all_tasks(loop) if loop else ():
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, dump_tasks)

if __name__ == "__main__":
    from ocpp_pipeline.cli import main

    sys.exit(main(["worker", "--log-level", os.environ.get("TEST_WORKER_LOG_LEVEL", "warning")]))
