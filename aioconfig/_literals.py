"""Text to values the way Dynaconf reads them: TOML literals, and Python literals for ``@json``.

Pure and safe: nothing here runs code. TOML goes through ``tomllib``; Python literals through
``ast.literal_eval``, which builds constants, lists, tuples, dicts and sets and nothing else.
Both are given a budget first (length, bracket depth), so hostile text comes back unparsed or
as a ``ValueError``, never a ``RecursionError``.
"""

from __future__ import annotations

import sys
from typing import Any

from ._limits import MAX_DEPTH

__all__ = ("MAX_LITERAL", "python_literal", "toml_literal", "typed")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

#: Longest text parsed as a literal; longer text stays a string (an env value is rarely so long).
MAX_LITERAL = 1 << 20

_NOT_PARSED: Any = object()


def _nesting(text: str) -> int:
    """An upper bound of how deep brackets nest in ``text`` (quotes are not skipped)."""
    depth = deepest = 0
    for char in text:
        if char in "[{(":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]})":
            depth -= 1
    return deepest


def toml_literal(text: str) -> Any:
    """``text`` as a TOML value (``6000``, ``true``, ``[1, 2]``, ``{a = 1}``), else ValueError.

    One value only: a line break would let the text add keys of its own, so it is refused.
    """
    if "\n" in text or "\r" in text or len(text) > MAX_LITERAL or _nesting(text) > MAX_DEPTH:
        raise ValueError("not a TOML value")
    try:
        document = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        raise ValueError("not a TOML value") from None
    return document["v"]


def typed(text: str) -> Any:
    """An environment value as Dynaconf types it: a TOML literal, else the text itself.

    ``"6000"`` -> 6000, ``"+1"`` -> 1, ``"true"`` and ``"True"`` -> True, ``"[1, 2]"`` ->
    ``[1, 2]``, ``"{timeout=8}"`` -> ``{"timeout": 8}``, ``"host.com"`` -> ``"host.com"``.
    ``True``/``False`` are Dynaconf's ``boolean_fix`` (variables are often exported capitalised).
    """
    stripped = text.strip()
    if stripped in ("True", "False"):
        return stripped == "True"
    try:
        return toml_literal(text)
    except ValueError:
        return text


def python_literal(text: str) -> Any:
    """``text`` as a Python literal (``{'a': 1, 'b': None}``), else ValueError. Never ``eval``."""
    import ast

    if len(text) > MAX_LITERAL or _nesting(text) > MAX_DEPTH:
        raise ValueError("not a Python literal (too long or too deep)")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not JSON or a Python literal") from None
    return _plain(value)


def _plain(value: Any) -> Any:
    """Tuples and sets as lists, bytes and complex refused: what JSON could have said."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError(f"not JSON or a Python literal (a {type(value).__name__})")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float, bool)) or key is None:
        return str(key)
    raise ValueError("not JSON or a Python literal (a mapping key that is not a string)")
