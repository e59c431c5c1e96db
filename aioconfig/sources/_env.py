"""Environment variables under a prefix: ``MYAPP_DB__PORT=5432`` -> ``{"db": {"port": 5432}}``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Mapping
from typing import Any

from .._exceptions import ParseError, SourceError, SourceUnavailable
from .._limits import check_depth
from .._literals import typed
from ._base import NotModified, Payload, Source, check_flag

__all__ = ("Env",)


class Env(Source):
    """Variables starting with ``prefix`` (upper-cased, as Dynaconf does) and ``_``; the rest
    is lower-cased and split on ``nested_separator``.

    Values are typed as Dynaconf types them: a TOML literal (``6000``, ``true``, ``[1, 2]``,
    ``{retries = 10}``) becomes that value, anything else stays the string; ``raw=True`` keeps
    every value a string. Tokens (``@int``, ``@merge``, ...) apply either way.

    ``environ`` defaults to ``os.environ``, read at each load; ``dotenv`` names a ``.env`` file
    whose variables count where the environment has none, read with python-dotenv (the
    ``dotenv`` extra) so that ``${BASE}/data`` expands and quoting follows the common rules; a
    missing file gives no variables, as in Dynaconf.
    """

    def __init__(
        self,
        prefix: str,
        *,
        nested_separator: str = "__",
        environ: Mapping[str, str] | None = None,
        optional: bool = False,
        raw: bool = False,
        dotenv: str | os.PathLike[str] | None = None,
    ) -> None:
        if not prefix.strip("_"):
            raise ValueError("prefix must not be empty: it would take in the whole environment")
        if not nested_separator:
            raise ValueError("nested_separator must not be empty")
        prefix = prefix.upper()
        self._prefix = prefix if prefix.endswith("_") else prefix + "_"
        self._separator = nested_separator
        self._environ = environ
        self.optional = check_flag("optional", optional)
        self._raw = check_flag("raw", raw)
        self._dotenv = None if dotenv is None else os.fspath(dotenv)
        self._from_file: frozenset[str] = frozenset()  # variables the .env file gave

    @property
    def prefix(self) -> str:
        """The prefix, with its trailing ``_`` (``"MYAPP_"``)."""
        return self._prefix

    def __repr__(self) -> str:
        extra = f", dotenv={self._dotenv!r}" if self._dotenv is not None else ""
        return (
            f"{type(self).__name__}({self._prefix!r}, nested_separator={self._separator!r}{extra})"
        )

    @property
    def name(self) -> str:
        return f"env:{self._prefix}*"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        import anyio.lowlevel  # here: a one-shot read (_load_blocking) needs no event loop
        import anyio.to_thread

        if self._dotenv is None:
            await anyio.lowlevel.checkpoint()
            from_file: dict[str, str] = {}
        else:
            from_file = await anyio.to_thread.run_sync(self._read_dotenv)
        return self._loaded(token, from_file)

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified:
        return self._loaded(token, {} if self._dotenv is None else self._read_dotenv())

    def _loaded(self, token: Hashable | None, from_file: dict[str, str]) -> Payload | NotModified:
        """The variables under the prefix, the environment's over the ``.env`` file's."""
        environ: Mapping[str, str] = os.environ if self._environ is None else self._environ
        prefix = self._prefix
        # The environment wins over the file, as with Dynaconf's load_dotenv and pydantic's
        # env_file.
        merged = {k: v for k, v in from_file.items() if k.startswith(prefix)}
        merged.update((k, v) for k, v in environ.items() if k.startswith(prefix))
        items = sorted(merged.items())
        digest = _digest(items)
        if token == digest:
            return NotModified(digest)
        self._from_file = frozenset(k for k in from_file if k not in environ)
        return Payload(self._nest(items), digest)

    def _read_dotenv(self) -> dict[str, str]:
        """The ``.env`` file's variables; none when it does not exist (as in Dynaconf)."""
        path = self._dotenv
        assert path is not None
        try:
            from dotenv import dotenv_values
        except ImportError:
            raise SourceError(
                path, "reading a .env file needs python-dotenv: pip install 'aioconfig[dotenv]'"
            ) from None
        if not os.path.isfile(path):
            return {}
        try:
            values = dotenv_values(path, interpolate=True)
        except UnicodeDecodeError:
            raise ParseError(path, "not UTF-8 text") from None
        except OSError as exc:
            raise SourceUnavailable(path, f"cannot read ({exc.strerror or exc})") from None
        # A bare key (``DEBUG`` without ``=``) has no value: it sets nothing, as in python-dotenv.
        return {key: value for key, value in values.items() if value is not None}

    def describe(self, path: tuple[str, ...]) -> str | None:
        # The variable is not kept (values may be secrets); its name follows from the path,
        # up to case, which the environment may hold differently.
        variable = self._prefix + self._separator.join(path).upper()
        if variable in self._from_file:
            return f"{variable} ({self._dotenv})"
        return variable

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
            # "@..." goes to the tokens (aioconfig._layers); the rest is typed here
            node[path[-1]] = value if self._raw or value.startswith("@") else typed(value)
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
