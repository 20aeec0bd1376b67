"""The JSON of a frame, decoded once and cheaply: msgspec where it agrees with :func:`json.loads`,
:func:`json.loads` itself for everything msgspec refuses (NaN / Infinity literals, lone surrogates,
``1e400``, over-deep nesting), so a normalizer decides exactly what it decided with ``json.loads``
(checked value for value in ``tests/processors/test_batch_path.py``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, about 4x faster on well-formed frames; raises what ``json.loads`` raises."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)
