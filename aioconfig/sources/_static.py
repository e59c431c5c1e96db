"""Fixed data: defaults, and a stand-in for real sources in tests."""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping
from typing import Any

from .._limits import MAX_DEPTH
from .._secrets import Secret
from ._base import NotModified, Payload, Source

__all__ = ("Static",)


class Static(Source):
    """A mapping given up front: ``Static({"db": {"port": 5432}}, name="defaults")``.

    The mapping is copied, so changing it afterwards changes nothing.
    """

    def __init__(self, mapping: Mapping[str, Any], *, name: str = "static") -> None:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"{name}: expected a mapping, got {type(mapping).__name__}")
        self._name = name
        _check_depth(mapping, name)  # first: the copy is recursive
        self._data = _copy(mapping, name, ())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        import anyio.lowlevel  # here: a one-shot read (_load_blocking) needs no event loop

        await anyio.lowlevel.checkpoint()
        return self._load_blocking(token)

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified:
        if token == 0:
            return NotModified(0)
        # The engine owns what it gets: each payload has its own copy.
        return Payload(_copy(self._data, self._name, ()), 0)


def _check_depth(mapping: Mapping[str, Any], name: str) -> None:
    """``ValueError`` if ``mapping`` nests deeper than :data:`MAX_DEPTH`; iterative."""
    stack: list[tuple[Any, int]] = [(mapping, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, Mapping) else node:
            if isinstance(child, Secret):
                child = child.reveal()
            if isinstance(child, (Mapping, list, tuple)):
                if depth >= MAX_DEPTH:
                    raise ValueError(f"{name}: nested more than {MAX_DEPTH} levels deep")
                stack.append((child, depth + 1))


def _copy(node: Any, name: str, path: tuple[str, ...]) -> Any:
    """Deep-copy ``node``, turning mappings into dicts and checking their keys are strings."""
    if isinstance(node, Mapping):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                where = repr(".".join(path)) if path else "the top level"
                raise TypeError(f"{name}: keys must be strings, got {key!r} at {where}")
            result[key] = _copy(value, name, (*path, key))
        return result
    if isinstance(node, list):
        return [_copy(item, name, path) for item in node]
    if isinstance(node, tuple):
        return tuple(_copy(item, name, path) for item in node)
    return copy.deepcopy(node)
