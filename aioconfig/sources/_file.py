"""A local file (JSON, TOML, YAML, INI or .env), re-read only when it really changed."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import os
import stat
import time
from collections.abc import Hashable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._exceptions import SourceError, SourceUnavailable
from ._base import Emit, NotModified, Payload, Source, check_flag
from ._formats import FORMATS, Format, format_from_path, parse

if TYPE_CHECKING:
    from watchfiles import Change

__all__ = ("File",)

# A file modified this close to the moment it was read may be rewritten again, same size, within
# the filesystem's timestamp granularity (2 s on FAT, 1 s on ext3 and HFS+) without its stat
# changing. Such a "racy" token is never trusted alone: the next load reads and hashes (git's
# racily-clean rule).
_RACY_NS = 2_000_000_000

# watchfiles waits for the Rust watcher in a thread that cancellation cannot interrupt; it checks
# back this often (ms), which bounds how long cancelling a watch takes.
_WATCH_TIMEOUT_MS = 100
_WATCH_DEBOUNCE_MS = 50
_WATCH_STEP_MS = 20


@dataclass(frozen=True, slots=True)
class _FileToken:
    """Which version of the file was read: its stat signature and a digest of its bytes."""

    signature: tuple[int, int, int, int]  # st_mtime_ns, st_size, st_ino, st_dev
    digest: bytes
    racy: bool


class File(Source):
    """A configuration file; the format comes from ``format=`` or the file's suffix.

    ``File("settings.toml")``, ``File("/etc/app/config", format="yaml", optional=True)``.
    ``watch=None`` watches for changes when ``watchfiles`` is installed. ``environments``:
    whether the file is split into environment sections (``[default]``, ``[production]``,
    ..., ``[global]``); None follows ``load(environments=...)``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Format | None = None,
        optional: bool = False,
        watch: bool | None = None,
        environments: bool | None = None,
    ) -> None:
        self._path = os.fspath(path)
        self.environments = environments
        if not isinstance(self._path, str):
            raise TypeError(f"path must be a str or os.PathLike[str], got {self._path!r}")
        known = ", ".join(FORMATS)
        if format is None:
            format = format_from_path(self._path)
            if format is None:
                raise ValueError(
                    f"cannot tell the format of {self._path!r} from its suffix; "
                    f"pass format= one of: {known}"
                )
        elif format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; expected one of: {known}")
        self._format: Format = format
        self._reads = itertools.count(1)
        self.optional = check_flag("optional", optional)
        self._watch = watch

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r}, format={self._format!r})"

    @property
    def name(self) -> str:
        return self._path

    @property
    def format(self) -> Format:
        return self._format

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        import anyio.to_thread  # here: a one-shot read (_load_blocking) needs no event loop

        return await anyio.to_thread.run_sync(self._load_blocking, token)

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified:
        previous = token if isinstance(token, _FileToken) else None
        # The order key: reads are numbered as they begin, so of a watch's read and a poll's
        # that race, the engine keeps the one that began later (it saw the newer file).
        return self._read(previous, next(self._reads))

    def _read(self, previous: _FileToken | None, order: int) -> Payload | NotModified:
        """Stat, read, hash and parse: all the blocking work, in one call (on a worker thread,
        under load())."""
        path = self._path
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                kind = "is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise SourceError(path, kind)
            if previous is not None and not previous.racy:
                if _signature(info) == previous.signature:
                    return NotModified(previous, order)
            with open(path, "rb") as file:
                info = os.fstat(file.fileno())  # describes exactly what we read
                data = file.read()
        except (FileNotFoundError, NotADirectoryError):
            # Fails fast: a local file will not appear by itself.
            raise SourceUnavailable(path, _not_found(path), transient=False) from None
        except PermissionError:
            raise SourceError(path, "permission denied") from None
        except IsADirectoryError:
            raise SourceError(path, "is a directory") from None
        except OSError as exc:
            raise SourceUnavailable(path, f"cannot read ({exc.strerror or exc})") from None
        read_at = time.time_ns()
        new = _FileToken(
            signature=_signature(info),
            digest=hashlib.blake2b(data, digest_size=16).digest(),
            racy=info.st_mtime_ns >= read_at - _RACY_NS,
        )
        if previous is not None and previous.digest == new.digest:
            return NotModified(new, order)
        document = parse(data, self._format, path)
        return Payload(document, new, order=order, changed_at=info.st_mtime)

    @property
    def can_watch(self) -> bool:
        return _watchfiles_installed() if self._watch is None else self._watch

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        """Watch the file's directory (editors save by renaming a new file over the old one).

        Ends by raising the load's error when the file turns unreadable or malformed.
        """
        try:
            from watchfiles import awatch
        except ImportError:
            raise SourceError(self._path, "install aioconfig[watch] to watch files") from None
        import anyio.to_thread

        directory, basename, linked = await anyio.to_thread.run_sync(_locate, self._path)

        def relevant(change: Change, changed: str) -> bool:
            return linked or os.path.basename(changed) == basename

        changes = awatch(
            directory,
            watch_filter=relevant,
            debounce=_WATCH_DEBOUNCE_MS,
            step=_WATCH_STEP_MS,
            rust_timeout=_WATCH_TIMEOUT_MS,
            yield_on_timeout=True,  # the first yield says the watcher is set up
            recursive=False,
        )
        current = token
        first = True
        async with aclosing(changes):
            while True:
                try:
                    batch = await anext(changes)
                except StopAsyncIteration:
                    return
                except OSError as exc:
                    raise SourceUnavailable(self._path, f"cannot watch: {exc}") from None
                if not batch and not first:
                    continue
                # The first check catches a change made before the watcher was set up.
                first = False
                try:
                    result = await self.load(current)
                except SourceUnavailable:
                    if current is None:
                        continue  # never seen yet: wait for it to appear
                    if self.optional:
                        # An optional file that goes away counts as empty, as in a poll.
                        current = None
                        await emit(Payload({}, None))
                        continue
                    raise
                except SourceError as exc:
                    if exc.transient:
                        raise
                    # A malformed edit: reported once; the next edit is the next chance.
                    await emit(exc)
                    continue
                current = result.token
                if isinstance(result, Payload):
                    await emit(result)


def _not_found(path: str) -> str:
    """ "file not found", saying where it was looked for when the name is relative (a service
    started from another directory than its author's is the usual cause)."""
    if os.path.isabs(path):
        return "file not found"
    return f"file not found (looked for {os.path.abspath(path)})"


def _locate(path: str) -> tuple[str, str, bool]:
    """The file's directory, its name there, and whether it is a symlink.

    Through a symlink (a Kubernetes ConfigMap swaps a ``..data`` link), any entry of the
    directory may change the file; a load that finds nothing new costs one stat.
    """
    target = os.path.abspath(path)
    directory, basename = os.path.split(target)
    return directory, basename, os.path.islink(target)


def _signature(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_dev)


@functools.cache
def _watchfiles_installed() -> bool:
    return importlib.util.find_spec("watchfiles") is not None
