"""Limits on what a configuration may be: how deep it nests, how far YAML aliases expand.

Every parser's result passes :func:`check_shape`; keys built from segments (etcd keys,
environment variables) pass :func:`check_depth`. YAML is also measured before it is built
(``sources/_formats.py``): merge keys cost PyYAML work that the built result no longer shows.
Past a limit: a ``ParseError`` naming the source, never a ``RecursionError`` later, a stalled
event loop or an expanded bomb.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import ParseError

__all__ = (
    "MAX_DEPTH",
    "MIN_VALUES",
    "check_depth",
    "check_shape",
    "too_deep",
    "too_many_values",
    "value_limit",
)

#: How deep a configuration may nest: mappings and lists inside one another, or the segments
#: of one key (``a.b.c`` is 3). Past it, a ``ParseError``: deeper data would only ever come
#: from a mistake or an attack, and would exhaust the interpreter's recursion limit later.
MAX_DEPTH = 100
#: How many values a document may hold once YAML aliases and merge keys are expanded: one per
#: byte of the document, and never fewer than this. A 500-byte "billion laughs" expands to
#: billions.
MIN_VALUES = 100_000


def value_limit(size: int) -> int:
    """How many values a document of ``size`` bytes (or characters) may expand to."""
    return max(size, MIN_VALUES)


def too_many_values(source: str, limit: int) -> ParseError:
    return ParseError(
        source,
        f"expands to more than {limit:,} values (YAML aliases or merge keys?): the limit is one "
        f"value per byte of the document, and at least {MIN_VALUES:,}",
    )


def too_deep(source: str, *, line: int | None = None, column: int | None = None) -> ParseError:
    return ParseError(source, f"nested more than {MAX_DEPTH} levels deep", line=line, column=column)


def check_shape(document: object, source: str, size: int) -> None:
    """Raise ``ParseError`` if ``document`` nests deeper than :data:`MAX_DEPTH` or holds more
    than ``max(size, MIN_VALUES)`` values, shared ones (YAML aliases) counted each time they
    appear. Iterative, and it stops at the limit: it costs no more than the limit allows."""
    if type(document) is not dict and type(document) is not list:
        return
    limit = value_limit(size)
    values = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if type(node) is dict else node
        values += len(children)
        if values > limit:
            raise too_many_values(source, limit)
        kinds = set(map(type, children))  # at C speed: most containers hold scalars only
        if dict not in kinds and list not in kinds:
            continue
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= MAX_DEPTH:
                    raise too_deep(source)
                stack.append((child, depth + 1))


def check_depth(path: tuple[str, ...], source: str, what: str) -> None:
    """``ParseError`` naming ``what`` (a key, a variable) if ``path`` has more than
    :data:`MAX_DEPTH` segments."""
    if len(path) > MAX_DEPTH:
        problem = f"{what} has {len(path)} segments, more than the {MAX_DEPTH} allowed"
        raise ParseError(source, problem)
