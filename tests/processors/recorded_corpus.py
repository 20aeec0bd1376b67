"""The recorded corpus: frame streams and the rows the processors made of them, replayed by
``tests/processors/test_recorded_corpus.py`` so that a change to the processors that changes any row is seen.

Each line of ``data/recorded/corpus.jsonl.gz`` is one stream: its records as the frames topic gave them
(``["record", partition, offset, key, value, kafka_ts]``; ``key`` / ``value`` as text, or ``{"b64": ...}`` when not
UTF-8) and the clock moves of quiet partitions (``["advance", partition, ms]``), fed through the
:class:`~processors.pipeline.FrameProcessor` with the state written and read back after every step (as a flush
does), and what came out of each step: every row of every table but ``frames`` (``frames``: a digest of its rows),
the counters when not zero. A charge attempt row is compared regardless of its place among the other attempt rows
of its step (a step's rows are one insert).

The streams were picked from the unit tests' and property tests' conversations (their charge points, with the
hypothesis examples of a run with 600 examples per test) and two simulator fleets of both versions with every quirk
and incident, by branch coverage of ``processors/`` and ``schemas/``: the fewest bytes that cover what all of them
cover. Their rows are the code's at ``main`` of issue #24's branch point, made again by each later version only
through a change that says what it changes.

    .venv/bin/python -m tests.processors.recorded_corpus            # which streams the current code changes
    .venv/bin/python -m tests.processors.recorded_corpus --record   # re-record the rows: accept the current code's
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig
from schemas.migration_numbers import SIGNED_SINCE
from schemas.tables import SESSIONS

CORPUS = Path(__file__).parent / "data" / "recorded" / "corpus.jsonl.gz"


def config_of(changes: dict[str, Any]) -> CorrelatorConfig:
    return CorrelatorConfig.defaults(**changes)


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value.encode()


def _text(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}


# Issue 25's session columns (signed meter values), recorded after the corpus: a stream without signed values must give
# them at these values (its row is then compared without them, as recorded); any other value is a difference.
_SIGNED_AT = next(i for i, c in enumerate(SESSIONS.columns) if c.since == SIGNED_SINCE)
_SIGNED_DEFAULTS = ["", "", "unsigned", None, "", "", ""]


def as_recorded(row: list[Any]) -> list[Any]:
    """A ``sessions`` row as rows were recorded before issue 25: without the signed columns when they are at their
    defaults (a session without signed values); as it is otherwise (and then it differs)."""
    return row[:_SIGNED_AT] if row[_SIGNED_AT:] == _SIGNED_DEFAULTS else row


def _digest(rows: list[Any]) -> str:
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def replay(stream: dict[str, Any]) -> list[dict[str, Any]]:
    """What came out of each step of ``stream`` (an entry per step that made something)."""
    states: dict[str, bytes] = {}
    processor = FrameProcessor(config_of(stream["config"]), states.get)
    outputs: list[dict[str, Any]] = []
    for index, step in enumerate(stream["steps"]):
        if step[0] == "record":
            _, partition, offset, key, value, timestamp_ms = step
            processor.process(partition, offset, _bytes(key), _bytes(value), timestamp_ms)
        else:
            processor.advance(step[1], step[2])
        out = processor.take()
        states.update(out.states)
        processor.persisted(out.states)
        made: dict[str, Any] = {}
        for table, rows in sorted(out.rows.items()):
            if not rows:
                continue
            rows = json.loads(json.dumps(rows, default=str))
            if table == "frames":
                made["frames"] = _digest(rows)
            else:
                if table == SESSIONS.name:
                    rows = [as_recorded(row) for row in rows]
                made[table] = rows
        counters = {"bad_envelopes": out.bad_envelopes, "processing_failures": out.processing_failures,
                    "unstorable_rows": out.unstorable_rows}
        made.update({name: n for name, n in counters.items() if n})
        if made:
            outputs.append({"step": index, **made})
    return outputs


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def record(streams: list[dict[str, Any]], path: Path = CORPUS) -> None:
    """Write ``streams`` with the rows the current code makes of them (gzip without a time stamp: the same rows
    give the same bytes)."""
    lines = "".join(json.dumps({**stream, "outputs": replay(stream)}, separators=(",", ":")) + "\n" for stream in streams)
    path.write_bytes(gzip.compress(lines.encode(), mtime=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write the current code's rows as the expected ones")
    parser.add_argument("--streams", type=Path, help="with --record: a JSON-lines file of new streams to record")
    args = parser.parse_args()
    if args.record:
        if args.streams is not None:
            with args.streams.open(encoding="utf-8") as lines:
                streams = [json.loads(line) for line in lines]
        else:
            streams = load()
        record(streams)
    else:
        streams = load()
        failing = [s["name"] for s in streams if replay(s) != s["outputs"]]
        print(f"{len(streams)} streams, {len(failing)} differ: {failing}")


if __name__ == "__main__":
    main()
