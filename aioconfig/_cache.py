"""The persistent last-known-good cache: what lets a service start when its store is down.

After each good snapshot the engine writes it to the cache; at start-up, if the sources give no
first good configuration within ``max_init_wait``, the Config starts from the cached one
(``snapshot.from_cache`` is true) and keeps retrying the sources in the background.

A cache is anything with ``async get(key) -> bytes | None`` and ``async set(key, value)``
(ConfigCat's custom-cache shape), so Redis or a shared volume can stand in for a file. The bytes
are an envelope of aioconfig's own (JSON: format marker, key, sources, version, time, data),
so a corrupt, truncated or foreign entry is recognised and ignored with a warning.

Secrets: what the Config counts as secret (``Snapshot.is_secret``: keys named like secrets,
``db.password`` but not ``token_ttl``, see ``aioconfig._secrets``; values given as ``Secret``;
values ``@format`` built from secrets), inside lists of mappings too (``servers[0].password``),
and every value holding a URL's credentials (``postgres://u:pw@h/db``), are left out of the
entry, their names listed, unless the cache says ``store_secrets = True``. A Config started
from such an entry lacks those keys until the sources answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread

from ._secrets import DEFAULT_SECRET_MATCHER, has_credentials

__all__ = ("Cache", "CacheEntry", "FileCache", "cache_key", "decode", "encode")

logger = logging.getLogger("aioconfig")


_MARKER = "aioconfig-cache"
_TEMPORARY_PREFIX = ".aioconfig-"
_TEMPORARY_SUFFIX = ".tmp"
_STALE_TEMPORARY = 60.0  # seconds: an older temporary file is a crashed write's
_FORMAT = 2  # 2: integers past 64 bits, inf and nan kept


@runtime_checkable
class Cache(Protocol):
    """Where the last good configuration is kept between runs.

    Set ``store_secrets = True`` on a cache to have secret keys written too (in clear text).
    """

    async def get(self, key: str) -> bytes | None:
        """The entry stored under ``key``, or None."""
        ...

    async def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        ...


class FileCache:
    """A cache in one local file, replaced atomically (temp file, fsync, rename).

    A crash mid-write leaves the previous file intact, never a torn one. The file is created
    readable by its owner only. ``store_secrets=True`` writes secret keys in clear text too;
    by default they are left out.
    """

    def __init__(self, path: str | os.PathLike[str], *, store_secrets: bool = False) -> None:
        self.path = os.fspath(path)
        self.store_secrets = store_secrets
        self._swept = False

    def __repr__(self) -> str:
        return f"FileCache({self.path!r}, store_secrets={self.store_secrets!r})"

    async def get(self, key: str) -> bytes | None:
        return await anyio.to_thread.run_sync(self._read)

    async def set(self, key: str, value: bytes) -> None:
        await anyio.to_thread.run_sync(self._write, value)

    def _read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None

    def _write(self, value: bytes) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        if not self._swept:
            self._swept = True
            _sweep(directory)
        import tempfile  # only a Config with a file cache writes one

        fd, temporary = tempfile.mkstemp(
            prefix=_TEMPORARY_PREFIX, suffix=_TEMPORARY_SUFFIX, dir=directory
        )
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(value)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        try:  # make the rename itself durable
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


def _sweep(directory: str) -> None:
    """Remove temporary files that a process killed mid-write left behind. Only old ones: a
    fresh one may be another process's write in progress."""
    cutoff = time.time() - _STALE_TEMPORARY
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(_TEMPORARY_PREFIX) and name.endswith(_TEMPORARY_SUFFIX):
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
            except OSError:
                pass


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A decoded cache entry."""

    data: dict[str, Any]
    version: int
    created_at: float
    sources: tuple[str, ...]
    omitted: tuple[str, ...]
    #: ``(source index, config_v6 document)`` for each source that provided flags.
    flags: tuple[tuple[int, dict[str, Any]], ...] = ()
    #: Keys stored in clear (``store_secrets``) that are secret by more than their names:
    #: given as ``Secret``, or built by ``@format`` from a secret. Masked again once restored.
    secrets: tuple[str, ...] = ()


def cache_key(source_names: Sequence[str]) -> str:
    """The cache key of a Config: a digest of its sources' names, in order."""
    digest = hashlib.sha256("\n".join(source_names).encode("utf-8", "surrogateescape"))
    return "aioconfig:" + digest.hexdigest()[:32]


def encode(
    data: dict[str, Any],
    *,
    key: str,
    version: int,
    sources: Sequence[str],
    store_secrets: bool,
    flags: Sequence[tuple[int, Any]] = (),
    is_secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    secrets: Sequence[str] = (),
) -> bytes:
    """The envelope for ``data`` (a deep, mutable copy the caller gives away).

    ``flags``: ``(source index, document)`` for each source with flags, stored as they are.
    """
    omitted: list[str] = []
    if not store_secrets:
        _strip_secrets(data, "", omitted, is_secret)
    envelope = {
        "format": _MARKER,
        "format_version": _FORMAT,
        "key": key,
        "version": version,
        "created_at": time.time(),
        "sources": list(sources),
        "omitted": omitted,
        "data": data,
        "flags": [[index, document] for index, document in flags],
        "secrets": list(secrets) if store_secrets else [],
    }
    # The standard library's encoder, not orjson: only it keeps integers past 64 bits and
    # inf and nan (as the tokens Infinity and NaN), so every value comes back exactly.
    return json.dumps(envelope, default=_jsonable, ensure_ascii=False).encode()


def decode(raw: bytes, *, key: str, where: str) -> CacheEntry | None:
    """The entry in ``raw``, or None (with a warning naming ``where``) if it is not usable."""
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError):
        logger.warning("ignoring the cache %s: corrupt or truncated", where)
        return None
    if not isinstance(envelope, dict) or envelope.get("format") != _MARKER:
        logger.warning("ignoring the cache %s: not an aioconfig cache entry", where)
        return None
    if envelope.get("format_version") != _FORMAT:
        logger.warning(
            "ignoring the cache %s: entry format %r, expected %r",
            where,
            envelope.get("format_version"),
            _FORMAT,
        )
        return None
    if envelope.get("key") != key:
        logger.warning("ignoring the cache %s: it was written for other sources", where)
        return None
    data = envelope.get("data")
    version, created_at = envelope.get("version"), envelope.get("created_at")
    sources, omitted = envelope.get("sources"), envelope.get("omitted")
    flags = envelope.get("flags", [])
    secrets = envelope.get("secrets", [])
    if (
        not isinstance(secrets, list)
        or not all(isinstance(item, str) for item in secrets)
        or not isinstance(flags, list)
        or not all(
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and isinstance(item[1], dict)
            for item in flags
        )
        or not isinstance(data, dict)
        or not isinstance(version, int)
        or not isinstance(created_at, (int, float))
        or not isinstance(sources, list)
        or not isinstance(omitted, list)
    ):
        logger.warning("ignoring the cache %s: malformed entry", where)
        return None
    return CacheEntry(
        data,
        version,
        float(created_at),
        tuple(map(str, sources)),
        tuple(map(str, omitted)),
        tuple((index, document) for index, document in flags),
        tuple(secrets),
    )


def _strip_secrets(
    node: dict[str, Any], prefix: str, omitted: list[str], is_secret: Callable[[str], bool]
) -> None:
    """Remove the secrets from ``node`` (at dotted ``prefix``), listing where they were."""
    _strip(node, prefix, prefix, omitted, is_secret)


def _strip(
    node: dict[str, Any],
    prefix: str,
    shown: str,
    omitted: list[str],
    is_secret: Callable[[str], bool],
) -> None:
    # ``prefix`` is the dotted path is_secret is asked about (items of a list take the list's
    # path, as masking does); ``shown`` is where it is, for the omitted list: "servers[0].".
    for name in list(node):
        path, here, value = prefix + name, shown + name, node[name]
        if is_secret(path):
            del node[name]
            omitted.append(here)
        elif isinstance(value, dict):
            _strip(value, path + ".", here + ".", omitted, is_secret)
        elif isinstance(value, list):
            _strip_items(value, path, here, omitted, is_secret)
            if has_credentials(value):  # a URL with credentials in a plain item
                del node[name]
                omitted.append(here)
        elif has_credentials(value):
            del node[name]
            omitted.append(here)


def _strip_items(
    items: list[Any], path: str, shown: str, omitted: list[str], is_secret: Callable[[str], bool]
) -> None:
    for index, item in enumerate(items):
        if isinstance(item, dict):
            _strip(item, path + ".", f"{shown}[{index}].", omitted, is_secret)
        elif isinstance(item, list):
            _strip_items(item, path, f"{shown}[{index}]", omitted, is_secret)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"cannot store a {type(value).__name__} in the cache")
