"""Every file a glob pattern matches, merged in sorted order: ``Glob("conf/*.toml")``.

One source, so one payload: the files are deep-merged (mappings key by key, the later file
winning) into one document. The pattern is globbed again at every load, so a file added or
removed is seen at the next refresh; each file keeps its own ``File`` token, so a load that
finds the same files unchanged costs one stat each and answers ``NotModified``.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Hashable, Mapping
from typing import Any

from ._base import NotModified, Payload, Source
from ._file import File
from ._formats import FORMATS, Format

__all__ = ("Glob", "has_magic")


def has_magic(path: str) -> bool:
    """Whether ``path`` is a glob pattern (``*``, ``?`` or ``[``), as ``glob`` decides."""
    return glob.has_magic(path)


class Glob(Source):
    """Files matching ``pattern`` (``**`` crosses directories), in sorted order, merged.

    ``load("conf/*.toml")`` makes one. No match gives an empty configuration, as a Dynaconf
    ``settings_files`` glob does. ``format``: for files whose suffix says nothing.
    ``environments``: as ``File``'s. History names the file that gave each key.

    ``@merge`` and ``@del`` in a matched file apply against the sources before the glob, not
    against the files before it in the same glob.
    """

    def __init__(
        self,
        pattern: str | os.PathLike[str],
        *,
        format: Format | None = None,
        environments: bool | None = None,
    ) -> None:
        self._pattern = os.fspath(pattern)
        if not isinstance(self._pattern, str):
            raise TypeError(f"pattern must be a str or os.PathLike[str], got {self._pattern!r}")
        if format is not None and format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; expected one of: {', '.join(FORMATS)}")
        self._format = format
        self.environments = environments
        self._files: dict[str, File] = {}
        self._reads = itertools.count(1)
        #: key path -> the file that gave it, in the payload handed out last
        self._owners: dict[tuple[str, ...], str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pattern!r})"

    @property
    def name(self) -> str:
        return self._pattern

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        import anyio.to_thread  # here: a one-shot read (_load_blocking) needs no event loop

        return await anyio.to_thread.run_sync(self._load_blocking, token)

    def _matches(self) -> list[str]:
        paths = glob.glob(self._pattern, recursive=True)
        return sorted(path for path in paths if os.path.isfile(path))

    def _file(self, path: str) -> File:
        file = self._files.get(path)
        if file is None:
            file = self._files[path] = File(path, format=self._format)
        return file

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified:
        order = next(self._reads)
        paths = self._matches()
        previous: dict[str, Any] = dict(token) if isinstance(token, tuple) else {}
        if previous and list(previous) == paths:
            tokens = []
            for path in paths:
                result = self._file(path)._read(previous[path], order)
                tokens.append((path, result.token))
                if isinstance(result, Payload):
                    break  # one changed: read them all below
            else:
                return NotModified(tuple(tokens), order)
        merged: dict[str, Any] = {}
        owners: dict[tuple[str, ...], str] = {}
        tokens = []
        changed_at = None
        for path in paths:
            result = self._file(path)._read(None, order)
            assert isinstance(result, Payload)
            _merge(merged, result.data, path, (), owners)
            tokens.append((path, result.token))
            if result.changed_at is not None:
                changed_at = max(changed_at or 0.0, result.changed_at)
        self._files = {path: self._files[path] for path in paths}
        self._owners = owners
        return Payload(merged, tuple(tokens), order=order, changed_at=changed_at)

    def describe(self, path: tuple[str, ...]) -> str | None:
        for end in range(len(path), 0, -1):
            owner = self._owners.get(path[:end])
            if owner is not None:
                return owner
        return None


def _merge(
    target: dict[str, Any],
    update: Mapping[str, Any],
    file: str,
    path: tuple[str, ...],
    owners: dict[tuple[str, ...], str],
) -> None:
    for key, value in update.items():
        here = (*path, key)
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge(current, value, file, here, owners)
        elif isinstance(value, Mapping):
            target[key] = {}
            _merge(target[key], value, file, here, owners)
        else:
            target[key] = value
            owners[here] = file
