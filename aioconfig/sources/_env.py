"""Environment variables under a prefix: ``MYAPP_DB__PORT=5432`` -> ``{"db": {"port": "5432"}}``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Mapping
from typing import Any

import anyio.lowlevel

from .._exceptions import ParseError
from .._limits import check_depth
from ._base import NotModified, Payload, Source, check_flag

__all__ = ("Env",)


class Env(Source):
    """Variables starting with ``prefix`` and ``_``; the rest is lower-cased and split on
    ``nested_separator``. Values stay strings.

    ``environ`` defaults to ``os.environ``, read at each load.
    """

    def __init__(
        self,
        prefix: str,
        *,
        nested_separator: str = "__",
        environ: Mapping[str, str] | None = None,
        optional: bool = False,
    ) -> None:
        if not prefix.strip("_"):
            raise ValueError("prefix must not be empty: it would take in the whole environment")
        if not nested_separator:
            raise ValueError("nested_separator must not be empty")
        self._prefix = prefix if prefix.endswith("_") else prefix + "_"
        self._separator = nested_separator
        self._environ = environ
        self.optional = check_flag("optional", optional)

    @property
    def prefix(self) -> str:
        """The prefix, with its trailing ``_`` (``"MYAPP_"``)."""
        return self._prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._prefix!r}, nested_separator={self._separator!r})"

    @property
    def name(self) -> str:
        return f"env:{self._prefix}*"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        await anyio.lowlevel.checkpoint()
        environ = os.environ if self._environ is None else self._environ
        items = sorted((k, v) for k, v in environ.items() if k.startswith(self._prefix))
        digest = _digest(items)
        if token == digest:
            return NotModified(digest)
        return Payload(self._nest(items), digest)

    def describe(self, path: tuple[str, ...]) -> str | None:
        # The variable is not kept (values may be secrets); its name follows from the path,
        # up to case, which the environment may hold differently.
        return self._prefix + self._separator.join(path).upper()

    def _nest(self, items: list[tuple[str, str]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        owners: dict[tuple[str, ...], str] = {}  # key path -> the variable that made it
        for variable, value in items:
            parts = variable[len(self._prefix) :].split(self._separator)
            if "" in parts:
                raise ParseError(self.name, f"variable {variable} has an empty key segment")
            check_depth(tuple(parts), self.name, f"variable {variable}")
            path = tuple(part.lower() for part in parts)
            node = data
            for depth in range(1, len(path)):
                child = node.setdefault(path[depth - 1], {})
                if not isinstance(child, dict):
                    raise self._conflict(owners[path[:depth]], variable, path[:depth])
                owners.setdefault(path[:depth], variable)
                node = child
            if path[-1] in node:
                raise self._conflict(owners[path], variable, path)
            node[path[-1]] = value
            owners[path] = variable
        return data

    def _conflict(self, first: str, second: str, path: tuple[str, ...]) -> ParseError:
        key = ".".join(path)
        return ParseError(self.name, f"variables {first} and {second} conflict at key {key!r}")


def _digest(items: list[tuple[str, str]]) -> bytes:
    """A digest, not the items: the token should not hold values (they may be secrets)."""
    digest = hashlib.blake2b(digest_size=16)
    for variable, value in items:
        for text in (variable, value):
            raw = text.encode("utf-8", "surrogateescape")  # undecodable bytes arrive as surrogates
            digest.update(len(raw).to_bytes(8, "little"))
            digest.update(raw)
    return digest.digest()
