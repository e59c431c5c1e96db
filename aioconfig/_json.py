"""JSON decoding that keeps every integer exact.

orjson is the fast path, but it turns an integer past 64 bits into a float, silently losing
digits (``123456789012345678901234567890`` becomes ``1.2345678901234568e+29``). Such integers
are valid JSON, and TOML and YAML keep them, so a document holding a run of 20 or more digits
(the shortest integer past 64 bits) is decoded again by the standard library, which keeps
them. A run inside a string or a long fraction costs that second decode too, and decodes the
same.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ("loads",)

# A run of digits found in C: every digit becomes b"0" and everything else a space (a regex
# search takes ten times longer than orjson itself on a digit-heavy megabyte).
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_RUN = b"0" * 20


def loads(data: str | bytes) -> Any:
    """``orjson.loads(data)``, exact for integers past 64 bits; raises what orjson raises.

    orjson checks the syntax first (its errors have the positions), so the second decode only
    ever meets valid JSON without NaN or Infinity.
    """
    value = orjson.loads(data)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _RUN not in raw.translate(_DIGITS):
        return value
    try:
        return json.loads(data)
    except RecursionError:  # nested past the standard library's recursion: the depth
        return value  # limit rejects it anyway, from orjson's result
