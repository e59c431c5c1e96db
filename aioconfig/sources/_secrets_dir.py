"""A directory of secret files, one file per key, as Docker and Kubernetes mount secrets.

``/run/secrets/db__password`` holding ``hunter2`` -> ``{"db": {"password": Secret("hunter2")}}``
(pydantic-settings' ``secrets_dir``). Every value is a ``Secret``: masked wherever it is shown,
and what ``@format`` builds from it is a secret too.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Hashable
from typing import Any

from .._exceptions import ParseError, SourceError, SourceUnavailable
from .._limits import check_depth
from .._secrets import Secret
from ._base import NotModified, Payload, Source, check_flag

__all__ = ("SecretsDir",)

#: The largest secret file read (Kubernetes caps a Secret at 1 MiB).
MAX_SECRET_BYTES = 1 << 20


class SecretsDir(Source):
    """Each regular file in ``path`` is a key (lower-cased, split on ``nested_separator``), its
    text, stripped of surrounding whitespace, the value, as a ``Secret``.

    Names starting with ``.`` are skipped (Kubernetes keeps ``..data`` and timestamped
    directories there; the keys are symlinks into them, and are followed). Subdirectories are
    skipped. A missing directory is ``SourceUnavailable``, or nothing with ``optional=True``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        nested_separator: str = "__",
        optional: bool = False,
    ) -> None:
        self._path = os.fspath(path)
        if not isinstance(self._path, str):
            raise TypeError(f"path must be a str or os.PathLike[str], got {self._path!r}")
        if not nested_separator:
            raise ValueError("nested_separator must not be empty")
        self._separator = nested_separator
        self.optional = check_flag("optional", optional)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"

    @property
    def name(self) -> str:
        return self._path

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        import anyio.to_thread  # here: a one-shot read (_load_blocking) needs no event loop

        return self._loaded(token, await anyio.to_thread.run_sync(self._read))

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified:
        return self._loaded(token, self._read())

    def _loaded(
        self, token: Hashable | None, files: list[tuple[str, bytes]]
    ) -> Payload | NotModified:
        """The files (name, bytes) as a payload; NotModified when their digest is ``token``."""
        digest = hashlib.blake2b(digest_size=16)
        for name, data in files:
            for part in (name.encode("utf-8", "surrogateescape"), data):
                digest.update(len(part).to_bytes(8, "little"))
                digest.update(part)
        new = digest.digest()
        if token == new:
            return NotModified(new)
        return Payload(self._nest(files), new)

    def _read(self) -> list[tuple[str, bytes]]:
        path = self._path
        try:
            entries = sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            raise SourceUnavailable(path, "directory not found", transient=False) from None
        except PermissionError:
            raise SourceError(path, "permission denied") from None
        files: list[tuple[str, bytes]] = []
        for name in entries:
            if name.startswith("."):
                continue
            file = os.path.join(path, name)
            try:
                info = os.stat(file)
                if not stat.S_ISREG(info.st_mode):
                    continue
                if info.st_size > MAX_SECRET_BYTES:
                    raise ParseError(file, f"larger than {MAX_SECRET_BYTES:,} bytes")
                with open(file, "rb") as handle:
                    data = handle.read(MAX_SECRET_BYTES + 1)
            except FileNotFoundError:
                continue  # removed between the listing and the read: the next load sees it
            except PermissionError:
                raise SourceError(file, "permission denied") from None
            if len(data) > MAX_SECRET_BYTES:
                raise ParseError(file, f"larger than {MAX_SECRET_BYTES:,} bytes")
            files.append((name, data))
        return files

    def _nest(self, files: list[tuple[str, bytes]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, raw in files:
            where = os.path.join(self._path, name)
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ParseError(where, "not UTF-8 text") from None
            parts = name.lower().split(self._separator)
            if "" in parts:
                raise ParseError(where, "the file name has an empty key segment")
            check_depth(tuple(parts), where, "the file name")
            node = data
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ParseError(where, f"conflicts with the file {part!r} at that key")
                node = child
            if parts[-1] in node:
                raise ParseError(where, "conflicts with another file at that key")
            node[parts[-1]] = Secret(text)
        return data

    def describe(self, path: tuple[str, ...]) -> str | None:
        return os.path.join(self._path, self._separator.join(path))
