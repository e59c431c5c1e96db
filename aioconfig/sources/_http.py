"""A document at an HTTP(S) URL, polled with conditional requests so an unchanged one costs a 304.

Errors name the URL with its user:password@ removed and its query values masked
(``https://host/app.json?token=***``), and never quote a header: any header the user passes may be
a credential. Exceptions from aiohttp are not chained either, since theirs carry the full URL.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import errno
import functools
import hashlib
import itertools
import logging
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from ssl import SSLContext
from typing import TypeVar

import aiohttp
import anyio.to_thread
from multidict import CIMultiDict
from yarl import URL

from .._exceptions import ParseError, SourceError, SourceUnavailable
from ._base import NotModified, Payload, Source, check_flag
from ._formats import FORMATS, Format, format_from_path, parse

# Bodies larger than this are parsed in a worker thread, smaller ones on the loop, where a
# thread hop would cost more: JSON parses ~0.5 ms per 150 KiB, PyYAML ~3 ms per KiB
# (benchmarks/bench_loop_stall.py), so YAML and the others go to the thread early.
_PARSE_ON_LOOP = {"json": 64 * 1024}
_PARSE_ON_LOOP_OTHERS = 2 * 1024

__all__ = ("Http",)

logger = logging.getLogger("aioconfig.sources.http")

_T = TypeVar("_T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

# Content types that say what the document is. Anything else falls back to the URL's suffix:
# servers label files they do not know as text/plain or application/octet-stream.
_CONTENT_TYPES: dict[str, Format] = {
    "application/json": "json",
    "text/json": "json",
    "application/toml": "toml",
    "application/x-toml": "toml",
    "text/toml": "toml",
    "text/x-toml": "toml",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
}
_SUFFIXED: dict[str, Format] = {"+json": "json", "+toml": "toml", "+yaml": "yaml"}
# An HTML page is an error or login page (a captive portal, an SSO proxy), never configuration,
# whatever the URL's suffix says.
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_MIME = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_ACCEPT: dict[Format | None, str] = {
    None: "application/json, application/yaml, application/toml, text/plain;q=0.5, */*;q=0.1",
    "json": "application/json, */*;q=0.1",
    "toml": "application/toml, */*;q=0.1",
    "yaml": "application/yaml, */*;q=0.1",
    "ini": "text/plain, */*;q=0.1",
    "env": "text/plain, */*;q=0.1",
}


@dataclass(frozen=True, slots=True)
class _HttpToken:
    """Which version was fetched: the validators the server gave, and a digest of the body."""

    etag: str | None
    last_modified: str | None
    digest: bytes


class Http(Source):
    """A configuration document at a URL, fetched with aiohttp.

    ``Http("https://config.internal/app.json", headers={"Authorization": "Bearer ..."})``.
    The format comes from ``format=``, else the response's Content-Type, else the URL's suffix.

    Each load is one GET (following up to ``max_redirects`` redirects), bounded by ``timeout``
    seconds of real time in all (redirects and body included) and by ``max_bytes`` of body.
    It sends ``If-None-Match`` / ``If-Modified-Since`` from the last 200, so an unchanged
    document costs a 304 and no parse; a 200 whose body is byte-for-byte the last one (a server
    without validators) is read and hashed but not parsed either.

    TLS certificates are verified (aiohttp's default). ``ssl=`` takes an ``ssl.SSLContext``
    for a private CA or client certificates; a context that does not verify turns verification
    off, so only pass one on purpose. ``proxy=`` is an ``http://`` (or ``https://``) proxy URL;
    user:password@ in it becomes ``Proxy-Authorization``. Environment variables such as
    ``HTTPS_PROXY`` are not read. User:password@ in ``url`` becomes ``Authorization: Basic``.
    On a redirect to another origin (scheme, host, port) no header from ``headers`` and no
    Authorization is sent: any of them may be a credential.

    ``session=``: an ``aiohttp.ClientSession`` to use and leave open (its cookie jar, default
    headers and ``trust_env`` apply; ``timeout``, ``max_bytes`` and the redirect rules still
    do). Without one, the source makes its own on the first load, without a cookie jar, and
    closes it in :meth:`aclose`.

    How failures are reported (``transient`` decides whether ``load()`` keeps retrying at
    start-up; a running Config retries every failure with backoff):

    * 5xx, 408, 429, timeouts, refused or reset connections: :class:`SourceUnavailable`,
      transient;
    * 404 and 410: :class:`SourceUnavailable`, not transient: a missing config URL rarely
      appears by itself. With ``optional=True`` the engine counts it as empty;
    * other 4xx (401, 403, ...), too many redirects, and a body over ``max_bytes``:
      :class:`SourceError`, not transient: asking again will not change the answer until
      someone changes the server or the settings;
    * a malformed body or a content type that is not configuration: :class:`ParseError`.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        format: Format | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        proxy: str | URL | None = None,
        ssl: SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
        optional: bool = False,
    ) -> None:
        parsed = _http_url(url, "url")
        self._name = _public_name(parsed)
        if format is not None and format not in FORMATS:
            known = ", ".join(FORMATS)
            raise ValueError(f"unknown format {format!r}; expected one of: {known}")
        check_seconds("timeout", timeout)
        _check_int("max_bytes", max_bytes, 1)
        _check_int("max_redirects", max_redirects, 0)
        if ssl is not None and not isinstance(ssl, SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext or None, got {type(ssl).__name__}")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, got {type(session).__name__}"
            )

        base: CIMultiDict[str] = CIMultiDict()
        base["Accept"] = _ACCEPT[format]
        user: CIMultiDict[str] = CIMultiDict()
        if parsed.raw_user is not None or parsed.raw_password is not None:
            credentials = f"{parsed.user or ''}:{parsed.password or ''}".encode()
            user["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
            parsed = parsed.with_user(None)
        add_headers(user, headers)

        self._url = parsed
        self._format = format
        self._base_headers = base
        self._user_headers = user
        self._timeout = float(timeout)
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._proxy = None if proxy is None else _http_url(proxy, "proxy")
        self._ssl: SSLContext | bool = True if ssl is None else ssl
        self._sessions = Sessions(self._name, session)
        self._fetches = itertools.count(1)
        self.optional = check_flag("optional", optional)

    def __repr__(self) -> str:
        format = "" if self._format is None else f", format={self._format!r}"
        return f"{type(self).__name__}({self._name!r}{format})"

    @property
    def name(self) -> str:
        """The URL without user:password@ and with query values masked: it shows in logs."""
        return self._name

    @property
    def format(self) -> Format | None:
        """The format given as ``format=``; None means: decided per response."""
        return self._format

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        previous = token if isinstance(token, _HttpToken) else None
        session = self._sessions.get()
        conditional: CIMultiDict[str] = CIMultiDict()
        if previous is not None:
            if previous.etag is not None:
                conditional["If-None-Match"] = previous.etag
            if previous.last_modified is not None:
                conditional["If-Modified-Since"] = previous.last_modified
        headers = CIMultiDict(self._base_headers)
        headers.update(self._user_headers)
        headers.update(conditional)
        cross_origin = CIMultiDict(self._base_headers)
        cross_origin.update(conditional)

        order = next(self._fetches)  # the order key: requests are numbered as they begin

        async def answer(response: aiohttp.ClientResponse) -> Payload | NotModified:
            return await self._answer(response, previous, order)

        return await send(
            session,
            self._url,
            answer,
            source=self._name,
            headers=headers,
            cross_origin_headers=cross_origin,
            timeout=self._timeout,
            max_redirects=self._max_redirects,
            proxy=self._proxy,
            ssl=self._ssl,
        )

    async def aclose(self) -> None:
        """Close the session this source made (never one passed as ``session=``)."""
        await self._sessions.aclose()

    # ------------------------------------------------------------------ internals

    async def _answer(
        self, response: aiohttp.ClientResponse, previous: _HttpToken | None, order: int
    ) -> Payload | NotModified:
        status = response.status
        if status == 304:
            if previous is None:
                raise SourceError(self._name, "HTTP 304 Not Modified to an unconditional request")
            etag = response.headers.get("ETag")
            if etag is not None and previous.etag is not None and etag != previous.etag:
                # RFC 9111 4.3.4: a 304 whose validator does not match what we hold updates
                # nothing. Adopting its ETag would pin the old content: the next request would
                # ask "changed since <new>?" and be told no, for good.
                logger.debug("%s: HTTP 304 with another ETag, ignored", self._name)
            else:
                logger.debug("%s: HTTP 304 Not Modified", self._name)
            return NotModified(previous, order)
        if status not in (200, 203):
            raise _status_error(self._name, status, response)
        format = self._format or self._format_of(response)
        body = await read_body(response, self._max_bytes, self._name)
        token = _HttpToken(
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            digest=hashlib.blake2b(body, digest_size=16).digest(),
        )
        if previous is not None and previous.digest == token.digest:
            logger.debug("%s: HTTP %d, the same %d bytes as before", self._name, status, len(body))
            return NotModified(token, order)
        logger.debug("%s: HTTP %d, %d bytes", self._name, status, len(body))
        if len(body) > _PARSE_ON_LOOP.get(format, _PARSE_ON_LOOP_OTHERS) or (
            format == "yaml" and b"*" in body  # an alias: up to 100,000 values' work, any size
        ):  # a worker thread
            data = await anyio.to_thread.run_sync(parse, body, format, self._name)
        else:
            data = parse(body, format, self._name)
        return Payload(data, token, order=order, changed_at=_http_date(token.last_modified))

    def _format_of(self, response: aiohttp.ClientResponse) -> Format:
        """The format the Content-Type names, else the one the URL's suffix implies."""
        raw = response.headers.get("Content-Type", "")
        mime = raw.partition(";")[0].strip().lower()
        if not _MIME.fullmatch(mime):
            mime = ""  # missing or garbled: never quote a garbled header
        format = _CONTENT_TYPES.get(mime)
        if format is None:
            format = next((f for s, f in _SUFFIXED.items() if mime.endswith(s)), None)
        if format is not None:
            return format
        if mime in _HTML:
            raise ParseError(
                self._name, f"expected a configuration document, got content type {mime!r}"
            )
        format = format_from_path(self._url.path)
        if format is not None:
            return format
        what = f"content type {mime!r}" if mime else "a response without a Content-Type"
        known = ", ".join(FORMATS)
        raise ParseError(
            self._name,
            f"cannot tell the format of {what} from a URL without a known suffix; "
            f"pass format= one of: {known}",
        )


class Sessions:
    """The aiohttp session a source loads with: one passed in, or one of its own.

    Its own is made on the first load, not in ``__init__`` (a ClientSession belongs to the
    running event loop), with aioconfig's User-Agent and no cookie jar, and closed by
    ``aclose``; a session passed in is never closed here. Used from another event loop or
    another process (a forked worker restarting its own Config), it makes a new one: the old
    one, bound to a loop that is gone from here, is left alone, never closed from here.
    """

    __slots__ = ("_closed", "_given", "_own", "_owner", "_source")

    def __init__(self, source: str, given: aiohttp.ClientSession | None = None) -> None:
        self._source = source
        self._given = given
        self._own: aiohttp.ClientSession | None = None
        self._owner: tuple[int, object] | None = None  # (pid, event loop) of ``_own``
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SourceError(self._source, "this source is closed")
        if self._given is not None:
            if self._given.closed:
                raise SourceError(self._source, "the session passed as session= is closed")
            return self._given
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._own is not None and self._owner != owner:
            abandon(self._own)
            self._own = None
        if self._own is None:
            self._own = aiohttp.ClientSession(
                headers={"User-Agent": _user_agent()}, cookie_jar=aiohttp.DummyCookieJar()
            )
            self._owner = owner
        return self._own

    async def aclose(self) -> None:
        self._closed = True
        own, self._own = self._own, None
        if own is not None:
            await own.close()


#: Sessions of another event loop or process, kept so that they are never collected here:
#: closing or collecting one would touch a loop (or a parent's sockets) that is not ours.
_abandoned: list[aiohttp.ClientSession] = []


def abandon(session: aiohttp.ClientSession) -> None:
    """Leave ``session`` (another loop's or another process's) alone for good.

    It is left open on purpose, so its connector is marked closed: otherwise aiohttp would warn
    "Unclosed client session" about it when the interpreter exits (in every forked worker).
    """
    _abandoned.append(session)
    connector = session.connector
    if connector is not None and hasattr(connector, "_closed"):
        connector._closed = True  # aiohttp's own flag: its __del__ then leaves it alone


async def send(
    session: aiohttp.ClientSession,
    url: URL,
    answer: Callable[[aiohttp.ClientResponse], Awaitable[_T]],
    *,
    source: str,
    headers: Mapping[str, str],
    cross_origin_headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - aiohttp's per-request timeout, passed on as it is
    max_redirects: int,
    proxy: URL | None,
    ssl: SSLContext | bool,
    allow_downgrade: bool = True,
) -> _T:
    """One GET of ``url``, following redirects by hand; ``answer`` reads the final response.

    By hand, because aiohttp keeps custom headers (an X-Api-Key, say) on a redirect to another
    host, and its ``max_redirects=5`` follows only four. ``headers`` go to ``url``'s origin;
    from the first redirect to another origin on, ``cross_origin_headers`` instead.
    ``allow_downgrade=False`` refuses a redirect from https to http. ``timeout`` bounds it all
    (redirects and ``answer`` included), and every aiohttp failure, ``answer``'s too, becomes a
    SourceError naming ``source``, never chained: aiohttp's own text quotes the URL.
    """
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = {url}
        redirects = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError
            async with session.get(
                url,
                headers=headers,
                allow_redirects=False,
                proxy=proxy,
                ssl=ssl,
                timeout=aiohttp.ClientTimeout(total=remaining),
            ) as response:
                status = response.status
                if status not in _REDIRECTS:
                    return await answer(response)
                location = response.headers.get("Location")
            if location is None:
                raise SourceError(source, f"{_status_text(status)} without a Location header")
            try:
                target = url.join(URL(location))
            except ValueError:
                raise SourceError(source, f"{_status_text(status)} to an invalid URL") from None
            if target.scheme not in ("http", "https") or not target.host:
                raise SourceError(source, "redirected to a URL that is not http(s)")
            if not allow_downgrade and url.scheme == "https" and target.scheme == "http":
                raise SourceError(source, "refused a redirect from https to http")
            redirects += 1
            if redirects > max_redirects:
                raise SourceError(source, f"too many redirects (max_redirects={max_redirects})")
            if target in seen:
                raise SourceError(source, "redirect loop")
            if target.origin() != url.origin():
                headers = cross_origin_headers
            seen.add(target)
            url = target
    except SourceError:
        raise
    # Before ClientError: aiohttp's ServerTimeoutError is both.
    except asyncio.TimeoutError:
        raise SourceUnavailable(source, f"timed out after {timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise _client_error(source, exc) from None


async def read_body(response: aiohttp.ClientResponse, limit: int, source: str) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` bytes."""
    length = response.content_length
    if length is not None and length > limit:
        raise SourceError(source, f"response body of {length} bytes exceeds max_bytes={limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            # Drop the connection rather than drain a body that may never end.
            response.close()
            raise SourceError(source, f"response body exceeds max_bytes={limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def check_seconds(what: str, value: object) -> None:
    """A duration in seconds (a timeout, an interval): a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")


def add_headers(target: CIMultiDict[str], headers: Mapping[str, str] | None) -> None:
    """Check the user's ``headers`` and add them to ``target``. Errors never quote a value."""
    for key, value in (headers or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("headers must map str to str")
        if any(c in key or c in value for c in "\r\n\0"):
            # Never the value in the message: it may be a token.
            raise ValueError(f"header {key!r} contains a line break or NUL")
        target[key] = value


def _http_url(value: str | URL, what: str) -> URL:
    if not isinstance(value, (str, URL)):
        raise TypeError(f"{what} must be a str or yarl.URL, got {type(value).__name__}")
    try:
        url = URL(value)
        ok = url.scheme in ("http", "https") and bool(url.host)
    except ValueError:
        ok = False
    if not ok:
        # Not the URL itself: it may hold a password.
        raise ValueError(f"{what} must be an absolute http:// or https:// URL")
    return url


def _public_name(url: URL) -> str:
    """``url`` as it may be shown: no user:password@, no fragment, query values masked."""
    name = str(url.with_user(None).with_query(None).with_fragment(None))
    if url.raw_query_string:
        parts = url.raw_query_string.split("&")
        # A part without "=" may itself be a token.
        masked = [part.partition("=")[0] + "=***" if "=" in part else "***" for part in parts]
        name += "?" + "&".join(masked)
    return name


def _check_int(what: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")


def _status_text(status: int) -> str:
    """``HTTP 503 Service Unavailable``: the standard phrase, never the server's own text."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


#: The longest ``Retry-After`` honoured, in seconds: a server cannot park a client for longer.
MAX_RETRY_AFTER = 300.0


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header's wait in seconds (delay-seconds or an HTTP date), capped at
    ``MAX_RETRY_AFTER``; None when absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        when = _http_date(value)
        if when is None:
            return None
        seconds = when - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _status_error(
    source: str, status: int, response: aiohttp.ClientResponse | None = None
) -> SourceError:
    problem = _status_text(status)
    if status >= 500 or status in (408, 429):
        wait = None
        if response is not None and status in (429, 503):
            wait = retry_after(response.headers.get("Retry-After"))
        if wait is not None:
            problem += f" (Retry-After: {wait:g}s)"
        error = SourceUnavailable(source, problem)
        error.retry_after = wait
        return error
    if status in (404, 410):
        return SourceUnavailable(source, problem, transient=False)
    return SourceError(source, problem)


def _os_problem(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name"
    return f"cannot connect ({error.strerror})" if error.strerror else "cannot connect"


def _http_date(value: str | None) -> float | None:
    """An HTTP date (``Last-Modified``) in seconds since the epoch; None if absent or bad."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None if when.tzinfo is None else when.timestamp()  # no zone: not an HTTP date


def _client_error(source: str, exc: aiohttp.ClientError) -> SourceError:
    """A SourceError built from the kind of failure only: aiohttp's own text quotes the URL."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return SourceError(source, "TLS certificate verification failed")
    if isinstance(exc, aiohttp.ClientSSLError):
        return SourceUnavailable(source, "TLS handshake failed")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return SourceUnavailable(source, f"cannot reach the proxy: {_os_problem(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return SourceUnavailable(source, _os_problem(exc.os_error))
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        problem = f"the proxy answered {_status_text(exc.status)}"
        if exc.status >= 500 or exc.status in (408, 429):
            return SourceUnavailable(source, problem)
        return SourceError(source, problem)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return SourceUnavailable(source, "connection lost mid-body")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return SourceUnavailable(source, "server disconnected")
    if isinstance(exc, aiohttp.ClientOSError):
        if isinstance(exc, ConnectionResetError) or exc.errno == errno.ECONNRESET:
            return SourceUnavailable(source, "connection reset")
        return SourceUnavailable(source, f"I/O error ({exc.strerror or type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return SourceUnavailable(source, "malformed HTTP response")
    return SourceUnavailable(source, f"request failed ({type(exc).__name__})")


@functools.cache
def _user_agent() -> str:
    # Imported late: this module loads while the aioconfig package itself is still importing.
    from .. import __version__

    return f"aioconfig/{__version__} aiohttp/{aiohttp.__version__}"
