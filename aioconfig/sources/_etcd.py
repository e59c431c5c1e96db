"""etcd v3 over its JSON gateway: the keys under a prefix, as nested configuration, kept by a watch.

```python
Etcd(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], prefix="/myapp/")
# /myapp/db/port = 5432   ->   {"db": {"port": 5432}}
```

List, then watch (what Kubernetes informers do): ``load`` reads the whole prefix at one revision;
``watch`` follows it from the next revision on, applies each revision's events to its own copy
of the prefix and hands the engine one full version per etcd revision (a transaction's keys land
together). When the history it needs has been compacted away, it lists again and carries on.
It resumes from the last revision it applied, on the next endpoint when one fails, so no update
is lost or applied twice.

Every request says ``Grpc-Metadata-hasleader: true``: a member cut off from its leader answers
"no leader" at once, instead of stalling (linearizable reads) or serving old data (watches).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import os
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import aiohttp
import anyio
import orjson

from .. import _json
from .._exceptions import ParseError, SourceError, SourceUnavailable
from .._limits import check_depth, check_shape
from ._base import Emit, NotModified, Payload, Source, check_flag
from ._http import abandon

__all__ = ("Etcd", "EtcdToken", "ValueFormat")

ValueFormat = Literal["json-or-string", "json", "string"]
_VALUE_FORMATS: Final = ("json-or-string", "json", "string")

#: etcd's own default (``--experimental-watch-progress-notify-interval``, 10 minutes).
DEFAULT_PROGRESS_NOTIFY_INTERVAL: Final = 600.0
_HEADERS: Final = {"Content-Type": "application/json", "Grpc-Metadata-hasleader": "true"}
_GRPC_UNAUTHENTICATED: Final = 16
_GRPC_FAILED_PRECONDITION: Final = 9
# A stream that lived this long counts as a success: the failover starts over from scratch.
_HEALTHY_STREAM = 1.0
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class EtcdToken:
    """Which version of the prefix a payload holds.

    ``revision`` is the store revision it is as of. ``count`` and ``max_mod_revision`` (the
    number of keys under the prefix and the newest ``mod_revision`` among them) change whenever
    the prefix does and only then: any put raises the newest ``mod_revision``, deletes alone
    lower the count. The store revision also moves on writes elsewhere, so it cannot say that.
    """

    revision: int
    count: int
    max_mod_revision: int

    def same_data(self, other: EtcdToken) -> bool:
        return (self.count, self.max_mod_revision) == (other.count, other.max_mod_revision)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One key: when it last changed, and what the configuration holds for it.

    ``value`` is the parsed value, or, in a watch, the last good one when an update did not
    parse (``_MISSING`` if there never was one). ``path`` is None for a key that cannot be a
    configuration key (reported once; never in the data). The raw value is not kept: the
    ``mod_revision`` tells whether a key changed.
    """

    mod_revision: int
    path: tuple[str, ...] | None
    value: Any


class _Mirror:
    """The prefix at one revision. Never changed after it is made: each revision makes a new one."""

    __slots__ = ("entries", "revision", "token")

    def __init__(self, revision: int, entries: dict[bytes, _Entry]) -> None:
        self.revision = revision
        self.entries = entries
        newest = max((e.mod_revision for e in entries.values()), default=0)
        self.token = EtcdToken(revision, len(entries), newest)

    def at(self, revision: int) -> _Mirror:
        """The same data, known to be current at a later revision."""
        return _Mirror(revision, self.entries)


class _Failure(Exception):
    """One request to one endpoint failed; ``failover``: another endpoint may do better."""

    def __init__(
        self,
        endpoint: str,
        cause: str,
        *,
        failover: bool = True,
        transient: bool = True,
        unauthenticated: bool = False,
        auth_disabled: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.cause = cause
        self.failover = failover
        self.transient = transient
        self.unauthenticated = unauthenticated
        self.auth_disabled = auth_disabled
        super().__init__(f"{endpoint}: {cause}")

    def error(self, source: str) -> SourceError:
        if self.transient:
            return SourceUnavailable(source, str(self))
        return SourceError(source, str(self), transient=False)


class _Relisted(Exception):
    """The watch's history was compacted; the prefix was read again: reopen from there."""


class _WatchState:
    __slots__ = ("created", "mirror")

    def __init__(self, mirror: _Mirror) -> None:
        self.mirror = mirror
        self.created = False


class Etcd(Source):
    """The keys under ``prefix`` in etcd v3, split on ``separator`` into nested keys.

    ``Etcd("http://127.0.0.1:2379", prefix="/myapp/")`` reads ``/myapp/db/port`` as
    ``db.port``. ``endpoints`` is one URL, a comma-separated string or a sequence of URLs of
    the cluster's members (``http://`` or ``https://``, host and port, no path); requests fail
    over from one to the next.

    ``value_format``: ``"json-or-string"`` parses each value as JSON when it is JSON and keeps
    the text otherwise (``5432`` -> ``5432``, ``on`` -> ``"on"``); ``"json"`` requires JSON;
    ``"string"`` keeps the UTF-8 text as is.

    ``username``/``password``: etcd's own auth; the token goes in the ``Authorization`` header
    and is renewed when etcd says it is no longer valid.

    ``timeout`` bounds each request, and the opening of a watch. An open watch has no deadline:
    it is dropped, and reopened on the next endpoint, after ``read_idle_timeout`` seconds
    without a byte (default: 3 x ``progress_notify_interval``, which should be what the
    server's ``--experimental-watch-progress-notify-interval`` says: etcd's default is 10
    minutes; the watch asks for progress notifications, so an idle but healthy watch still
    hears from the server that often).

    ``session``: an ``aiohttp.ClientSession`` to use (for TLS client certificates, say); it is
    left open by :meth:`aclose`. Otherwise one is made on first use, in the running event loop.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] = ("http://127.0.0.1:2379",),
        prefix: str = "/myapp/",
        *,
        username: str | None = None,
        password: str | None = None,
        separator: str = "/",
        value_format: ValueFormat = "json-or-string",
        optional: bool = False,
        timeout: float = 5.0,
        progress_notify_interval: float = DEFAULT_PROGRESS_NOTIFY_INTERVAL,
        read_idle_timeout: float | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._endpoints = _check_endpoints(endpoints)
        if not isinstance(separator, str) or not separator:
            raise ValueError("separator must be a non-empty string")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if prefix and not prefix.endswith(separator):
            raise ValueError(
                f"prefix {prefix!r} must end with the separator {separator!r} (or be empty): "
                f"without it, {prefix!r} would also take in keys like {prefix + '-other'!r}"
            )
        if value_format not in _VALUE_FORMATS:
            known = ", ".join(map(repr, _VALUE_FORMATS))
            raise ValueError(f"unknown value_format {value_format!r}; expected one of: {known}")
        if (username is None) != (password is None):
            raise ValueError("pass both username= and password=, or neither")
        _check_seconds("timeout", timeout)
        _check_seconds("progress_notify_interval", progress_notify_interval)
        if read_idle_timeout is None:
            read_idle_timeout = 3.0 * progress_notify_interval
        else:
            _check_seconds("read_idle_timeout", read_idle_timeout)
            if read_idle_timeout <= progress_notify_interval:
                raise ValueError(
                    "read_idle_timeout must be longer than progress_notify_interval, "
                    "or a quiet but healthy watch would be dropped"
                )
        self._prefix = prefix
        self._raw_prefix = prefix.encode("utf-8")
        # etcd refuses an empty key: the whole keyspace is ["\0", "\0"), every key from "\0" on.
        self._range = {
            "key": _b64(self._raw_prefix or b"\0"),
            "range_end": _b64(_prefix_end(prefix)),
        }
        self._separator = separator
        self._format: ValueFormat = value_format
        self.optional = check_flag("optional", optional)
        self._username = username
        self._password = password
        self._timeout = float(timeout)
        self._idle = float(read_idle_timeout)
        self._request_timeout = aiohttp.ClientTimeout(total=self._timeout)
        self._watch_timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=self._timeout, sock_read=self._idle
        )
        self._session = session
        self._owns_session = session is None
        self._session_owner: tuple[int, object] | None = None  # (pid, loop) of our session
        self._preferred = 0  # the endpoint that answered last
        self._auth_token: str | None = None
        self._auth_enabled = True  # until etcd says otherwise
        self._auth_lock: anyio.Lock | None = None
        # The newest state handed out (by load or watch): where a reopened watch resumes.
        self._mirror: _Mirror | None = None

    def __repr__(self) -> str:
        auth = ", authenticated" if self._username is not None else ""
        return (
            f"{type(self).__name__}({list(self._endpoints)!r}, prefix={self._prefix!r}, "
            f"value_format={self._format!r}{auth})"
        )

    @property
    def name(self) -> str:
        return f"etcd://{urlsplit(self._endpoints[0]).netloc}{self._prefix}"

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._endpoints

    @property
    def can_watch(self) -> bool:
        return True

    async def aclose(self) -> None:
        """Close the session this source made (one passed in with ``session=`` stays open).

        The source stays usable: a later request makes a new session, for the next aclose().
        """
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ------------------------------------------------------------------ load

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        # The revision is the order key: of a read and a watch that race, the engine keeps
        # the newer revision, whichever arrives first.
        revision, kvs = await self._read()
        newest = max((mod for _, _, mod in kvs), default=0)
        current = EtcdToken(revision, len(kvs), newest)
        if isinstance(token, EtcdToken) and token.same_data(current):
            return NotModified(current, revision)
        mirror = self._strict_mirror(revision, kvs)
        data = self._nest(mirror)
        self._remember(mirror)
        return Payload(data, mirror.token, order=revision)

    def describe(self, path: tuple[str, ...]) -> str | None:
        mirror = self._mirror
        if mirror is not None:
            for key, entry in mirror.entries.items():
                if entry.path == path:
                    shown = key.decode("utf-8", "backslashreplace")
                    return f"{shown} (mod_revision {entry.mod_revision})"
        return None

    def _remember(self, mirror: _Mirror) -> None:
        """Keep the newest mirror read: what ``describe`` shows and a watch resumes from."""
        if self._mirror is None or mirror.revision >= self._mirror.revision:
            self._mirror = mirror

    # ------------------------------------------------------------------ watch

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        """Follow the prefix from ``token``'s revision on; see the module docstring.

        Ends by raising :class:`~aioconfig.SourceUnavailable` when no endpoint has kept a watch
        open for ``timeout`` seconds; the engine polls meanwhile and reopens it later.
        """
        mirror = self._mirror
        if mirror is not None and isinstance(token, EtcdToken) and token.same_data(mirror.token):
            # The prefix did not change between the two revisions: resume after the token's.
            mirror = mirror.at(token.revision)
        else:
            # Nothing known for this token (a version the engine did not take, say): list.
            revision, kvs = await self._read()
            mirror = self._strict_mirror(revision, kvs)
            await self._publish(mirror, emit)
        state = _WatchState(mirror)
        failures = 0
        first_failure = 0.0
        causes: list[str] = []
        while True:
            endpoint = self._endpoints[self._preferred]
            state.created = False
            opened = time.monotonic()
            try:
                await self._watch_from(endpoint, state, emit)
            except _Relisted:
                continue
            except _Failure as failure:
                if not failure.failover:
                    raise failure.error(self.name) from None
                if state.created and time.monotonic() - opened >= _HEALTHY_STREAM:
                    failures = 0
                    causes.clear()
                if failures == 0:
                    first_failure = time.monotonic()
                failures += 1
                causes.append(str(failure))
                self._preferred = (self._preferred + 1) % len(self._endpoints)
                rounds, step = divmod(failures, len(self._endpoints))
                if rounds and not step:
                    # Every endpoint failed in turn: give up after ``timeout``, else pause.
                    if time.monotonic() - first_failure >= self._timeout:
                        raise SourceUnavailable(
                            self.name, "watch lost: " + _summary(causes[-len(self._endpoints) :])
                        ) from None
                    await anyio.sleep(min(0.05 * 2.0 ** (rounds - 1), 1.0))

    async def _watch_from(self, endpoint: str, state: _WatchState, emit: Emit) -> None:
        """Watch from one endpoint until it fails (raises :class:`_Failure`) or relists."""
        renewed = False
        while True:
            try:
                await self._ensure_token(endpoint)
                await self._stream(endpoint, state, emit)
            except _Failure as failure:
                if not failure.unauthenticated or renewed:
                    raise
                await self._renew_token(endpoint, failure)
                renewed = True

    async def _stream(self, endpoint: str, state: _WatchState, emit: Emit) -> None:
        """One watch stream. Only the network reads are under a deadline, never ``emit``:
        cutting the engine off halfway through a version would lose that version."""
        request = {
            "create_request": {
                **self._range,
                "start_revision": state.mirror.revision + 1,
                "progress_notify": True,
            }
        }
        session = self._get_session()
        async with AsyncExitStack() as stack:
            try:
                with anyio.fail_after(self._timeout):
                    response = await stack.enter_async_context(
                        session.post(
                            endpoint + "/v3/watch",
                            data=orjson.dumps(request),
                            headers=self._headers(),
                            timeout=self._watch_timeout,
                        )
                    )
                    if response.status != 200:
                        raise _http_failure(endpoint, response.status, await response.read())
                    lines = _Lines(response.content)
                    line = await lines.next()
            except (TimeoutError, asyncio.TimeoutError):
                raise _Failure(endpoint, f"no answer within {self._timeout:g}s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise _Failure(endpoint, f"opening the watch: {_describe(exc)}") from None
            while True:
                await self._handle(endpoint, line, state, emit)
                try:
                    line = await lines.next()
                except asyncio.TimeoutError:  # aiohttp's sock_read: nothing for that long
                    cause = f"the watch was silent for {self._idle:g}s (read_idle_timeout)"
                    raise _Failure(endpoint, cause) from None
                except (aiohttp.ClientError, OSError) as exc:
                    raise _Failure(endpoint, f"watching: {_describe(exc)}") from None

    async def _handle(
        self, endpoint: str, line: bytes | None, state: _WatchState, emit: Emit
    ) -> None:
        """Act on one message of the watch stream."""
        if line is None:
            raise _Failure(endpoint, "the watch stream ended")
        kind, groups = _watch_message(endpoint, line)
        if kind == "compacted":
            await self._relist(state, emit)
            raise _Relisted
        if kind == "created":
            state.created = True
        # A progress notification (no events) only shows the stream is alive. The watch
        # resumes from the last revision it applied, never from a notified one: that can
        # never skip an event, and costs at most one list after a compaction.
        for revision, changes in groups:
            if revision <= state.mirror.revision:
                continue  # already applied (never expected: the watch starts after it)
            await self._advance(state, revision, changes, emit)

    async def _relist(self, state: _WatchState, emit: Emit) -> None:
        """The history since ``state`` was compacted: read the prefix, apply the difference."""
        revision, kvs = await self._read()
        old = state.mirror.entries
        fresh = {key: (raw, mod) for key, raw, mod in kvs}
        changes: list[tuple[bytes, bytes | None, int]] = [
            (key, raw, mod)
            for key, (raw, mod) in fresh.items()
            if key not in old or old[key].mod_revision != mod
        ]
        changes += [(key, None, revision) for key in old if key not in fresh]
        if not changes:
            state.mirror = state.mirror.at(max(revision, state.mirror.revision))
            self._remember(state.mirror)
            return
        await self._advance(state, revision, changes, emit)

    async def _advance(
        self,
        state: _WatchState,
        revision: int,
        changes: Sequence[tuple[bytes, bytes | None, int]],
        emit: Emit,
    ) -> None:
        """Apply one revision's changes; report the bad ones; hand out the new version."""
        entries = dict(state.mirror.entries)
        errors: list[ParseError] = []
        for key, raw, mod in changes:
            if raw is None:
                entries.pop(key, None)
                continue
            previous = entries.get(key)
            entry = self._entry(key, raw, mod, revision, previous, errors)
            entries[key] = entry
        state.mirror = _Mirror(revision, entries)
        for error in errors:
            await emit(error)
        await self._publish(state.mirror, emit)

    async def _publish(self, mirror: _Mirror, emit: Emit) -> None:
        try:
            data = self._nest(mirror)
        except ParseError as exc:
            await emit(exc)
            return
        self._remember(mirror)
        await emit(Payload(data, mirror.token, order=mirror.revision))

    # ------------------------------------------------------------------ keys and values

    def _strict_mirror(self, revision: int, kvs: Iterable[tuple[bytes, bytes, int]]) -> _Mirror:
        errors: list[ParseError] = []
        entries = {key: self._entry(key, raw, mod, mod, None, errors) for key, raw, mod in kvs}
        if errors:
            raise errors[0]
        return _Mirror(revision, entries)

    def _entry(
        self,
        key: bytes,
        raw: bytes,
        mod_revision: int,
        revision: int,
        previous: _Entry | None,
        errors: list[ParseError],
    ) -> _Entry:
        """Parse one key's value; on failure record the error and keep the last good value."""
        if previous is not None:
            path = previous.path
        else:
            try:
                path = self._path(key)
            except ParseError as exc:
                errors.append(exc)
                path = None
        if path is None:
            return _Entry(mod_revision, None, _MISSING)
        try:
            value = self._parse(key, raw, revision)
        except ParseError as exc:
            errors.append(exc)
            value = _MISSING if previous is None else previous.value
        return _Entry(mod_revision, path, value)

    def _path(self, key: bytes) -> tuple[str, ...]:
        try:
            relative = key[len(self._raw_prefix) :].decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(self.name, f"key {_show(key)} is not UTF-8") from None
        parts = tuple(relative.split(self._separator))
        if "" in parts:
            raise ParseError(self.name, f"key {_show(key)} has an empty segment")
        check_depth(parts, self.name, f"key {_show(key)}")
        return parts

    def _parse(self, key: bytes, raw: bytes, revision: int) -> Any:
        if self._format != "string":
            try:
                value = _json.loads(raw)
                if type(value) is dict or type(value) is list:
                    check_shape(value, self.name, len(raw))
                return value
            except ParseError as exc:
                raise ParseError(
                    self.name, f"key {_show(key)} at revision {revision}: {exc.problem}"
                ) from None
            except orjson.JSONDecodeError as exc:
                if self._format == "json":
                    where = f"line {exc.lineno}, column {exc.colno}"
                    raise ParseError(
                        self.name,
                        f"key {_show(key)} at revision {revision}: value is not JSON ({where})",
                    ) from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(
                self.name, f"key {_show(key)} at revision {revision}: value is not UTF-8"
            ) from None

    def _nest(self, mirror: _Mirror) -> dict[str, Any]:
        """The nested data of ``mirror``: a new dict each time (a Payload owns its data)."""
        data: dict[str, Any] = {}
        leaves: dict[tuple[str, ...], bytes] = {}
        branches: dict[tuple[str, ...], bytes] = {}  # first key under each section
        for key, entry in mirror.entries.items():
            path = entry.path
            if path is None or entry.value is _MISSING:
                continue
            for depth in range(1, len(path)):
                owner = leaves.get(path[:depth])
                if owner is not None:
                    raise self._conflict(owner, key)
            owner = branches.get(path)
            if owner is not None:
                raise self._conflict(key, owner)
            node = data
            for depth in range(1, len(path)):
                branches.setdefault(path[:depth], key)
                node = node.setdefault(path[depth - 1], {})
            node[path[-1]] = entry.value
            leaves[path] = key
        check_shape(data, self.name, 0)  # a deep key holding a deep value
        return data

    def _conflict(self, value_key: bytes, section_key: bytes) -> ParseError:
        return ParseError(
            self.name,
            f"keys {_show(value_key)} and {_show(section_key)} conflict: "
            f"the first holds a value where the second needs a section",
        )

    # ------------------------------------------------------------------ requests

    async def _read(self) -> tuple[int, list[tuple[bytes, bytes, int]]]:
        """A linearizable range read of the prefix: (store revision, [(key, value, mod)])."""
        answer = await self._request("/v3/kv/range", self._range)
        try:
            revision = int(answer["header"]["revision"])
            kvs = [
                (
                    base64.b64decode(kv["key"]),
                    base64.b64decode(kv.get("value", "")),
                    int(kv.get("mod_revision", 0)),
                )
                for kv in answer.get("kvs", ())
            ]
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise SourceUnavailable(self.name, "malformed answer to a range request") from None
        return revision, kvs

    async def _request(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST to the preferred endpoint, failing over to the others in turn."""
        causes: list[str] = []
        count = len(self._endpoints)
        for step in range(count):
            index = (self._preferred + step) % count
            endpoint = self._endpoints[index]
            try:
                answer = await self._authorized(endpoint, path, body)
            except _Failure as failure:
                if not failure.failover:
                    raise failure.error(self.name) from None
                causes.append(str(failure))
                continue
            self._preferred = index
            return answer
        raise SourceUnavailable(self.name, _summary(causes))

    async def _authorized(
        self, endpoint: str, path: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One request, with a token when one is needed, renewed once if etcd refuses it."""
        await self._ensure_token(endpoint)
        try:
            return await self._post(endpoint, path, body)
        except _Failure as failure:
            if not failure.unauthenticated:
                raise
            await self._renew_token(endpoint, failure)
        return await self._post(endpoint, path, body)

    async def _ensure_token(self, endpoint: str) -> None:
        if self._username is not None and self._auth_enabled and self._auth_token is None:
            await self._authenticate(endpoint, None)

    async def _renew_token(self, endpoint: str, failure: _Failure) -> None:
        """etcd refused the token (expired, or a restarted member forgot it) or wants one."""
        if self._username is None:
            raise _Failure(
                endpoint,
                f"{failure.cause} (etcd has auth enabled: give Etcd a username and a password)",
                failover=False,
                transient=False,
            )
        self._auth_enabled = True  # "user name is empty": auth was turned on since
        await self._authenticate(endpoint, self._auth_token)

    async def _authenticate(self, endpoint: str, stale: str | None) -> None:
        """Get a new token, unless another task already replaced ``stale``."""
        if self._auth_lock is None:
            self._auth_lock = anyio.Lock()
        async with self._auth_lock:
            if self._auth_token is not None and self._auth_token != stale:
                return
            self._auth_token = None
            credentials = {"name": self._username, "password": self._password}
            try:
                answer = await self._post(endpoint, "/v3/auth/authenticate", credentials)
            except _Failure as failure:
                if failure.auth_disabled:
                    self._auth_enabled = False  # a token would be refused: send none
                    return
                if failure.failover:
                    raise
                raise _Failure(
                    endpoint,
                    f"authentication as {self._username!r} failed: {failure.cause}",
                    failover=False,
                    transient=False,
                ) from None
            token = answer.get("token")
            if not isinstance(token, str) or not token:
                raise _Failure(endpoint, "authentication answered without a token")
            self._auth_token = token
            self._auth_enabled = True

    def _headers(self) -> dict[str, str]:
        token = self._auth_token
        if token is None or not self._auth_enabled:
            return _HEADERS
        return {**_HEADERS, "Authorization": token}

    async def _post(self, endpoint: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One POST to one endpoint, within ``timeout``; failures raise :class:`_Failure`."""
        session = self._get_session()
        data = orjson.dumps(body)
        headers = _HEADERS if path == "/v3/auth/authenticate" else self._headers()
        for attempt in (1, 2):
            try:
                async with session.post(
                    endpoint + path,
                    data=data,
                    headers=headers,
                    timeout=self._request_timeout,
                ) as response:
                    status = response.status
                    raw = await response.read()
                break
            except aiohttp.ServerDisconnectedError:
                # A kept-alive connection the server had closed (a restarted member): once
                # more, on a fresh connection.
                if attempt == 2:
                    raise _Failure(endpoint, "the server closed the connection") from None
            except asyncio.TimeoutError:
                raise _Failure(endpoint, f"no answer within {self._timeout:g}s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise _Failure(endpoint, _describe(exc)) from None
        if status != 200:
            raise _http_failure(endpoint, status, raw)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise _Failure(endpoint, "the answer is not a JSON object")
        return answer

    def _get_session(self) -> aiohttp.ClientSession:
        if self._owns_session:  # a forked worker or another loop: a session of its own
            owner = (os.getpid(), asyncio.get_running_loop())
            if self._session is not None and self._session_owner != owner:
                abandon(self._session)
                self._session = None
            self._session_owner = owner
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


class _Lines:
    """The newline-delimited messages of a streamed body, however long.

    (aiohttp's ``readline`` refuses a line longer than its buffer limit, 512 KiB in aiohttp
    3.14; one revision of a watch can be larger: etcd takes requests of up to 1.5 MiB.)
    """

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = False

    async def next(self) -> bytes | None:
        """The next non-empty line, or None at the end of the stream."""
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                if line.strip():
                    return line
                continue
            self._scanned = len(self._buffer)
            if self._eof:
                line = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return line if line.strip() else None
            chunk = await self._content.readany()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True


_Changes: TypeAlias = "list[tuple[bytes, bytes | None, int]]"


def _watch_message(endpoint: str, line: bytes) -> tuple[str, list[tuple[int, _Changes]]]:
    """Decode one watch message: ("created" | "compacted" | "progress" | "events", groups).

    Raises :class:`_Failure` for an error or a cancellation that is not a compaction.
    """
    try:
        message = orjson.loads(line)
        if not isinstance(message, dict):
            raise TypeError
        error = message.get("error")
        if error is not None:
            raise _stream_failure(endpoint, error)
        result = message["result"]
        if result.get("canceled"):
            if int(result.get("compact_revision") or 0):
                return "compacted", []
            raise _cancel_failure(endpoint, str(result.get("cancel_reason") or ""))
        if result.get("created"):
            return "created", []
        events = result.get("events")
        if not events:
            return "progress", []
        return "events", _by_revision(events)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise _Failure(endpoint, "malformed watch message") from None


def _by_revision(events: Sequence[Any]) -> list[tuple[int, _Changes]]:
    """Group a watch response's events by revision (in order): one version per revision."""
    groups: list[tuple[int, _Changes]] = []
    for event in events:
        kv = event["kv"]
        revision = int(kv["mod_revision"])
        key = base64.b64decode(kv["key"])
        value = None if event.get("type") == "DELETE" else base64.b64decode(kv.get("value", ""))
        if not groups or groups[-1][0] != revision:
            groups.append((revision, []))
        groups[-1][1].append((key, value, revision))
    return groups


def _http_failure(endpoint: str, status: int, raw: bytes) -> _Failure:
    """What an HTTP error from etcd's gateway means for the caller (body: code and message)."""
    code: Any = None
    message = ""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        message = str(body.get("message") or body.get("error") or "")[:200]
    cause = f"HTTP {status}" + (f": {message}" if message else "")
    if status == 401 or code == _GRPC_UNAUTHENTICATED or message.endswith("user name is empty"):
        # A token etcd no longer knows (expired, or the member restarted), or none at all
        # since auth was enabled: renew and retry once.
        return _Failure(endpoint, cause, failover=False, unauthenticated=True)
    if code == _GRPC_FAILED_PRECONDITION and message.endswith("authentication is not enabled"):
        return _Failure(endpoint, cause, failover=False, auth_disabled=True)
    if status >= 500 or status in (408, 429):
        # 503 no leader or timed out, 408 a member shutting down ("the client connection is
        # closing"), 429 too many requests: another member may answer.
        return _Failure(endpoint, cause)
    return _Failure(endpoint, cause, failover=False, transient=False)


def _stream_failure(endpoint: str, error: Any) -> _Failure:
    """An ``{"error": ...}`` message ending a watch ("no leader", "transport is closing")."""
    if not isinstance(error, dict):
        return _Failure(endpoint, "the watch failed")
    message = str(error.get("message") or "")[:200]
    status = error.get("http_code")
    cause = "the watch failed" + (f": HTTP {status}" if status else "") + f": {message}"
    return _Failure(
        endpoint, cause, unauthenticated=error.get("grpc_code") == _GRPC_UNAUTHENTICATED
    )


def _cancel_failure(endpoint: str, reason: str) -> _Failure:
    """etcd refused or ended the watch (``created`` and ``canceled`` with a reason)."""
    cause = "the watch was cancelled" + (f": {reason[:200]}" if reason else "")
    if "code = Unauthenticated" in reason or "user name is empty" in reason:
        return _Failure(endpoint, cause, failover=False, unauthenticated=True)
    if "code = PermissionDenied" in reason:
        return _Failure(endpoint, cause, failover=False, transient=False)
    return _Failure(endpoint, cause)


def _summary(causes: Sequence[str]) -> str:
    if len(causes) == 1:
        return causes[0]
    return f"no endpoint answered ({len(causes)} tried): " + "; ".join(causes)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _show(key: bytes) -> str:
    """A key as errors name it: quoted, and cut in the middle past 200 characters (a hostile
    key may be 10 KB, and errors are logged)."""
    text = key.decode("utf-8", "backslashreplace")
    if len(text) > 200:
        text = f"{text[:120]}...{text[-60:]}"
    return repr(text)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _prefix_end(prefix: str) -> bytes:
    """The ``range_end`` covering every key that starts with ``prefix``.

    The prefix with its last byte plus one (bytes 0xff dropped first); for the empty prefix,
    ``\\0``, which etcd reads as "every key from ``key`` on".
    """
    raw = bytearray(prefix.encode("utf-8"))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"
    raw[-1] += 1
    return bytes(raw)


def _check_endpoints(endpoints: object) -> tuple[str, ...]:
    if isinstance(endpoints, str):
        items: list[object] = [part.strip() for part in endpoints.split(",")]
    elif isinstance(endpoints, (bytes, bytearray)) or not isinstance(endpoints, Iterable):
        raise TypeError(f"endpoints must be a str or a sequence of str, got {endpoints!r}")
    else:
        items = list(endpoints)
    if not items:
        raise ValueError("endpoints must name at least one etcd member")
    normalized: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"each endpoint must be a str, got {type(item).__name__}")
        parts = urlsplit(item.strip())
        if "@" in parts.netloc:
            # The URL holds credentials: never repeat it.
            raise ValueError(
                "an endpoint must not contain credentials: pass username= and password="
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"endpoint {item!r} must be a URL like http://127.0.0.1:2379 "
                "(http:// or https://, then host and port)"
            )
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError(f"endpoint {item!r} has an invalid port") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"endpoint {item!r} must not have a path, query or fragment")
        url = f"{parts.scheme}://{parts.netloc}"
        if url in normalized:
            raise ValueError(f"endpoint {url!r} is listed twice")
        normalized.append(url)
    return tuple(normalized)


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
