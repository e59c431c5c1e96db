"""ConfigCat's ``config_v6.json``, fetched and cached the way ConfigCat's own SDK does it.

The algorithms follow configcat-client 10 (``configfetcher.py``, ``configservice.py``,
``configentry.py``): the SDK key check, the URL, the data-governance redirects of the config's
preferences, and the cache key and entry format, so that this source and the SDK can share one
cache. Where the SDK is lax about safety this source is not; :class:`ConfigCat` lists where.

SDK keys are credentials: the key shows nowhere but in the request path. Names, reprs, log
records and errors carry only its last four characters.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from ssl import SSLContext
from typing import Literal

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .._cache import Cache
from .._exceptions import ParseError, SourceError, SourceUnavailable
from .._text import decode_utf8
from ..flags._model import FlagConfig, _load_json, parse_flags
from ._base import NotModified, Payload, Source, check_flag
from ._http import (
    Sessions,
    _check_int,
    _http_url,
    _public_name,
    _status_error,
    _status_text,
    _user_agent,
    add_headers,
    check_seconds,
    read_body,
    send,
)

__all__ = ("ConfigCat",)

logger = logging.getLogger("aioconfig.sources.configcat")

DataGovernance = Literal["global", "eu"]

#: Where each data governance setting points without ``base_url=`` (configfetcher.py's
#: BASE_URL_GLOBAL and BASE_URL_EU_ONLY).
_CDN: dict[str, str] = {
    "global": "https://cdn-global.configcat.com",
    "eu": "https://cdn-eu.configcat.com",
}
# The SDK's checks, from ConfigCatClient.__init__; a proxy key only with a base_url.
_KEY_FORMATS = (re.compile(r".{22}/.{22}"), re.compile(r"configcat-sdk-1/.{22}/.{22}"))
_PROXY_KEY = re.compile(r"configcat-proxy/.+")
# The preferences' redirect modes (configfetcher.RedirectMode).
_NO_REDIRECT, _SHOULD_REDIRECT, _FORCE_REDIRECT = 0, 1, 2
# The SDK fetches at most this many more times after following the preferences' redirects.
_MAX_HOPS = 2
_MAX_HTTP_REDIRECTS = 5
_DATA_GOVERNANCE_DOCS = "https://configcat.com/docs/advanced/data-governance/"


@dataclass(frozen=True, slots=True)
class _Version:
    """The token: the ETag (None when the server sent none) and a digest of the document."""

    etag: str | None
    digest: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    """One document as the SDK caches it (``ConfigEntry``): fetch time, ETag, JSON text."""

    fetch_time: float  # seconds since the epoch
    etag: str  # "" when the server sent none: such an entry is never cached
    text: str
    version: _Version

    def serialize(self) -> bytes:
        # ConfigEntry.serialize: milliseconds, rounded down.
        return f"{math.floor(self.fetch_time * 1000)}\n{self.etag}\n{self.text}".encode()


def _entry(fetch_time: float, etag: str, text: str) -> _Entry:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return _Entry(fetch_time, etag, text, _Version(etag or None, digest))


def _deserialize(raw: bytes | str) -> _Entry:
    """ConfigEntry.create_from_string; ValueError when the entry is malformed."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    first = text.find("\n")
    second = text.find("\n", first + 1)
    if first < 0 or second < 0:
        raise ValueError("fewer lines than expected")
    fetch_time = float(text[:first]) / 1000
    if not math.isfinite(fetch_time):
        raise ValueError("invalid fetch time")
    etag = text[first + 1 : second]
    if not etag:
        raise ValueError("empty ETag")
    return _entry(fetch_time, etag, text[second + 1 :])


def _check_sdk_key(sdk_key: object, *, custom_base_url: bool) -> None:
    """Refuse a key the SDK refuses; the message never quotes it (it is a credential).

    The SDK's ``re.match(".../...$")`` also takes a key with one trailing newline; this does not.
    """
    if not isinstance(sdk_key, str):
        raise TypeError(f"sdk_key must be a str, got {type(sdk_key).__name__}")
    if any(pattern.fullmatch(sdk_key) for pattern in _KEY_FORMATS):
        return
    if _PROXY_KEY.fullmatch(sdk_key):
        if custom_base_url:
            return
        raise ValueError("a configcat-proxy/ SDK key needs base_url= (the proxy's URL)")
    raise ValueError(
        "the SDK key is invalid: expected configcat-sdk-1/<22 characters>/<22 characters> "
        "(or a legacy <22>/<22> one); find yours at https://app.configcat.com/sdkkey"
    )


def _masked(sdk_key: str) -> str:
    """The last four characters of the key's secret part, if it is long enough to spare them."""
    tail = sdk_key.rpartition("/")[2]
    return "****" + (tail[-4:] if len(tail) >= 16 else "")


class ConfigCat(Source):
    """Feature flags from ConfigCat: ``load(ConfigCat("configcat-sdk-1/.../..."))``.

    Loads give flags only (``Payload.flags``, no settings). ``refresh_interval`` is
    ``poll_interval``, 60 s as the SDK's auto polling, so ``load()`` polls that often unless it
    is told otherwise. Each poll is a conditional GET of
    ``{base_url}/configuration-files/{sdk_key}/config_v6.json``: an unchanged config costs a 304.

    ``base_url`` defaults to ConfigCat's CDN for ``data_governance`` (``"global"`` or ``"eu"``);
    give it for a ConfigCat Proxy (the only place a ``configcat-proxy/`` key is accepted).
    ``headers`` are sent to the origin of that base URL only; ``proxy`` is an http(s) proxy URL
    and ``ssl`` an ``ssl.SSLContext``, as for :class:`~aioconfig.sources.Http`. ``timeout`` bounds
    each request, ``max_bytes`` each body.

    **Redirects in the config** (the preferences ``p.u``, a base URL, and ``p.r``: 0 no, 1
    should, 2 force) follow the SDK's algorithm: a different ``p.u`` becomes the base URL of
    every later poll, unless ``base_url=`` was given and ``p.r`` is not 2; with ``p.r`` 1 or 2
    the config is fetched again from there at once (1 also logs the data-governance warning),
    at most twice more, then an error "redirection loop" is logged and the last response used.
    On top of the SDK: a ``p.u`` that is not an absolute http(s) URL, or one that would move
    from https to http, is ignored with a warning (the SDK would follow both), and trailing
    slashes do not count in comparing base URLs.

    **HTTP redirects** (3xx) are followed as :class:`~aioconfig.sources.Http` follows them: by
    hand, up to 5, ``headers`` dropped once on another origin, and never from https to http.
    The SDK (requests) follows up to 30, downgrades included.

    **Cache**: with ``cache=`` (an :class:`aioconfig.Cache`), entries use the SDK's key and
    format, so an SDK and this source over one store (Redis, say) share what they fetch. Each
    load reads the cache first: an entry another client wrote less than ``poll_interval`` ago is
    used without a request; else the fetch is conditional on the entry's ETag and its result
    written back (a 304 rewrites the entry with the new fetch time). The entry this source wrote
    itself never stops it fetching: ``load()``'s schedule (and ``refresh(force=True)``) decides
    that. If the first load cannot reach the server (or gets a document that does not parse), a
    cached entry of any age is served, with a warning; if the server asked for a pause (a 429 or
    503 with ``Retry-After``), later loads fail with that error, without a request, until the
    pause is over. A cache that fails or holds something unreadable is logged and ignored. A
    response without an ETag is not cached (the SDK could not read the entry back).

    Failures: 403 and 404 are :class:`~aioconfig.SourceError`, not transient ("invalid SDK key
    or config not found": ``optional=True`` does not hide them); 5xx, 408, 429, timeouts and
    connection errors :class:`~aioconfig.SourceUnavailable`, transient (with ``retry_after``,
    capped at 300 s, when a 429 or 503 carries ``Retry-After``); a document that does not
    parse a :class:`~aioconfig.ParseError`, after which the last good flags keep serving. The
    SDK counts 403, 404 and bad documents as transient.
    """

    def __init__(
        self,
        sdk_key: str,
        *,
        base_url: str | URL | None = None,
        data_governance: DataGovernance = "global",
        headers: Mapping[str, str] | None = None,
        proxy: str | URL | None = None,
        ssl: SSLContext | None = None,
        timeout: float = 10.0,
        cache: Cache | None = None,
        poll_interval: float = 60.0,
        max_bytes: int = 10 * 1024 * 1024,
        optional: bool = False,
    ) -> None:
        _check_sdk_key(sdk_key, custom_base_url=bool(base_url))
        if not isinstance(data_governance, str) or data_governance not in _CDN:
            raise ValueError(f"data_governance must be 'global' or 'eu', got {data_governance!r}")
        if base_url is not None:
            base = _http_url(base_url, "base_url")
            if base.raw_query_string or base.raw_fragment:
                raise ValueError("base_url must not have a query or a fragment")
            if base.raw_user is not None or base.raw_password is not None:
                # Not the URL: it holds a password. Redirects would carry it on, too.
                raise ValueError("base_url must not contain user:password@; pass headers=")
        check_seconds("timeout", timeout)
        check_seconds("poll_interval", poll_interval)
        _check_int("max_bytes", max_bytes, 1)
        if ssl is not None and not isinstance(ssl, SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext or None, got {type(ssl).__name__}")
        if cache is not None and not isinstance(cache, Cache):
            raise TypeError(
                f"cache must have async get(key) and set(key, value), got {type(cache).__name__}"
            )
        user_headers: CIMultiDict[str] = CIMultiDict()
        add_headers(user_headers, headers)

        self._sdk_key = sdk_key
        self._name = f"configcat:{_masked(sdk_key)}"
        self._given_base = None if base_url is None else str(base_url).rstrip("/")
        self._data_governance = data_governance
        #: Where the next poll goes: moved by the config's redirects.
        self._base_url = self._given_base or _CDN[data_governance]
        self._home = URL(self._base_url).origin()
        self._user_headers = user_headers
        self._proxy = None if proxy is None else _http_url(proxy, "proxy")
        self._ssl: SSLContext | bool = True if ssl is None else ssl
        self._timeout = float(timeout)
        self._max_bytes = max_bytes
        self._cache = cache
        self._cache_key = hashlib.sha1(f"{sdk_key}_config_v6.json_v2".encode()).hexdigest()
        self._poll_interval = float(poll_interval)
        self.refresh_interval = self._poll_interval
        self.optional = check_flag("optional", optional)

        self._sessions = Sessions(self._name)
        #: The last version handed out, with its text (rewritten to the cache on a 304).
        self._held: _Entry | None = None
        #: The bytes this source last wrote to the cache, and the last entry read from it.
        self._written: bytes | None = None
        self._read: tuple[bytes | str, _Entry] | None = None
        self._parsed: tuple[bytes, FlagConfig] | None = None
        #: Until when (time.monotonic()) no request goes out, and the failure that asked so:
        #: set when a Retry-After came while the cache served (see _check_pause).
        self._pause: tuple[float, SourceError] | None = None

    def __repr__(self) -> str:
        if self._given_base is not None:
            where = f"base_url={_public_name(URL(self._given_base))!r}"
        else:
            where = f"data_governance={self._data_governance!r}"
        return f"{type(self).__name__}({self._name!r}, {where})"

    @property
    def name(self) -> str:
        """``configcat:****`` and the last four characters of the SDK key: it shows in logs."""
        return self._name

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        previous = token if isinstance(token, _Version) else None
        session = self._sessions.get()
        cached, own = await self._read_cache()
        if cached is not None and not own and cached.fetch_time > time.time() - self._poll_interval:
            logger.debug("%s: the cached config is fresh, not fetching", self._name)
            return self._hand_out(cached, previous)
        # The SDK's rule: an entry in the cache is the version held (configservice.py).
        base = cached
        if base is None and previous is not None and self._held is not None:
            base = self._held if self._held.version == previous else None
        etag = base.version.etag if base is not None else None
        if etag is None and previous is not None:
            etag = previous.etag
        try:
            self._check_pause()
            fetched = await self._fetch(session, etag)
            if fetched is None:  # 304
                if base is None:
                    if previous is None:
                        raise SourceError(
                            self._name, "HTTP 304 Not Modified to an unconditional request"
                        )
                    return NotModified(previous)
                entry = replace(base, fetch_time=time.time())
                result = self._hand_out(entry, previous)
            else:
                entry, document = fetched
                result = self._hand_out(entry, previous, document)  # ParseError: no cache write
        except SourceError as exc:
            # Starting up without the server (or with a broken document on it): a cached entry
            # of any age beats no flags at all. A wrong key (403, 404) is not masked.
            if previous is None and cached is not None:
                if exc.transient or isinstance(exc, ParseError):
                    logger.warning(
                        "%s: %s; serving the cached config fetched at %s",
                        self._name,
                        exc.problem,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cached.fetch_time)),
                    )
                    if exc.retry_after and self._pause is None:
                        # The engine sees a good load and polls on its own schedule: the
                        # pause the server asked for is kept here instead.
                        self._pause = (time.monotonic() + exc.retry_after, exc)
                    return self._hand_out(cached, None)
            raise
        await self._write_cache(entry)
        return result

    async def aclose(self) -> None:
        """Close the HTTP session this source made."""
        await self._sessions.aclose()

    # ------------------------------------------------------------------ internals

    def _check_pause(self) -> None:
        """Fail without a request while a pause the server asked for, when this source served
        its cache instead, runs: the same error, with the seconds left as ``retry_after``."""
        if self._pause is None:
            return
        until, asked = self._pause
        left = until - time.monotonic()
        if left <= 0:
            self._pause = None
            return
        error = SourceUnavailable(self._name, asked.problem)
        error.retry_after = left
        raise error

    def _hand_out(
        self, entry: _Entry, previous: _Version | None, document: object = None
    ) -> Payload | NotModified:
        """What the engine gets for ``entry``; ParseError if its document is malformed.

        ``document``: the entry's JSON, already decoded (else its text is parsed).
        """
        if previous is not None and previous.digest == entry.version.digest:
            result: Payload | NotModified = NotModified(entry.version)
        else:
            result = Payload({}, entry.version, flags=self._flags(entry, document))
        self._held = entry
        return result

    def _flags(self, entry: _Entry, document: object = None) -> FlagConfig:
        digest = entry.version.digest
        if self._parsed is None or self._parsed[0] != digest:
            if not isinstance(document, Mapping):  # parse_flags words the error for JSON text
                document = entry.text
            self._parsed = (digest, parse_flags(document, source=self._name))
        return self._parsed[1]

    async def _fetch(
        self, session: aiohttp.ClientSession, etag: str | None
    ) -> tuple[_Entry, object] | None:
        """Fetch the config, following its preferences' redirects: configfetcher.py's loop.

        Returns the entry and its decoded JSON, or None for a 304 (from wherever the last
        request went, as the SDK does).
        """
        hops = 0
        while True:
            fetched = await self._get(session, etag)
            if fetched is None:
                return None
            document = fetched[1]
            preferences = document.get("p") if isinstance(document, dict) else None
            if not isinstance(preferences, dict):
                return fetched
            target = preferences.get("u")
            if target is None or (isinstance(target, str) and _same_base(target, self._base_url)):
                return fetched
            redirect = preferences.get("r")
            # With base_url= given, only a forced redirect moves away from it.
            if self._given_base is not None and redirect != _FORCE_REDIRECT:
                return fetched
            if not self._move_to(target) or redirect == _NO_REDIRECT:
                return fetched
            if redirect == _SHOULD_REDIRECT:
                logger.warning(
                    "%s: data_governance=%r is not in sync with the Data Governance preference "
                    "on the ConfigCat Dashboard; moving to %s. Read more: %s",
                    self._name,
                    self._data_governance,
                    _public_name(URL(self._base_url)),
                    _DATA_GOVERNANCE_DOCS,
                )
            if hops >= _MAX_HOPS:
                logger.error(
                    "%s: redirection loop encountered while fetching the config JSON; "
                    "using the last response",
                    self._name,
                )
                return fetched
            hops += 1

    def _move_to(self, target: object) -> bool:
        """Make ``target`` the base URL, unless it is not one or would drop TLS."""
        url: URL | None = None
        if isinstance(target, str):
            try:
                url = URL(target.rstrip("/"))
            except ValueError:
                url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            logger.warning(
                "%s: ignoring the config's redirect: not an absolute http(s) URL", self._name
            )
            return False
        if url.raw_query_string or url.raw_fragment:
            logger.warning(
                "%s: ignoring the config's redirect: a base URL with a query or fragment",
                self._name,
            )
            return False
        if URL(self._base_url).scheme == "https" and url.scheme == "http":
            logger.warning(
                "%s: refusing the config's redirect from https to %s: it would drop TLS",
                self._name,
                _public_name(url),
            )
            return False
        assert isinstance(target, str)
        self._base_url = target.rstrip("/")
        return True

    async def _get(
        self, session: aiohttp.ClientSession, etag: str | None
    ) -> tuple[_Entry, object] | None:
        """One GET of the config at the current base URL: the entry and its decoded JSON."""
        base = URL(self._base_url)
        url = base.joinpath("configuration-files", self._sdk_key, "config_v6.json")
        plain: CIMultiDict[str] = CIMultiDict()
        plain["X-ConfigCat-UserAgent"] = _user_agent()
        if etag is not None:
            plain["If-None-Match"] = etag
        headers = plain
        if base.origin() == self._home and self._user_headers:
            headers = CIMultiDict(plain)
            headers.update(self._user_headers)
            headers.update(plain)

        async def answer(response: aiohttp.ClientResponse) -> tuple[_Entry, object] | None:
            status = response.status
            if status == 304:
                logger.debug("%s: HTTP 304 Not Modified", self._name)
                return None
            if status in (403, 404):
                problem = f"{_status_text(status)}: invalid SDK key or config not found"
                raise SourceError(self._name, problem, transient=False)
            if status not in (200, 203):
                raise _status_error(self._name, status, response)
            body = await read_body(response, self._max_bytes, self._name)
            logger.debug("%s: HTTP %d, %d bytes", self._name, status, len(body))
            text = decode_utf8(body, self._name)
            entry = _entry(time.time(), response.headers.get("ETag", ""), text)
            return entry, _load_json(text, self._name)

        return await send(
            session,
            url,
            answer,
            source=self._name,
            headers=headers,
            cross_origin_headers=plain,
            timeout=self._timeout,
            max_redirects=_MAX_HTTP_REDIRECTS,
            proxy=self._proxy,
            ssl=self._ssl,
            allow_downgrade=False,
        )

    async def _read_cache(self) -> tuple[_Entry | None, bool]:
        """The cached entry (None if none or unusable) and whether this source wrote it."""
        if self._cache is None:
            return None, False
        try:
            raw = await self._cache.get(self._cache_key)
        except Exception as exc:
            logger.warning("%s: reading the cache failed (%s)", self._name, type(exc).__name__)
            return None, False
        if not raw or not isinstance(raw, (bytes, str)):
            return None, False
        if self._read is not None and self._read[0] == raw:
            entry = self._read[1]
        else:
            try:
                entry = _deserialize(raw)
                self._flags(entry)
            except (ValueError, ParseError) as exc:
                problem = exc.problem if isinstance(exc, ParseError) else str(exc)
                logger.warning("%s: ignoring the cache entry: %s", self._name, problem)
                return None, False
            self._read = (raw, entry)
        own = self._written is not None and raw == self._written
        return entry, own

    async def _write_cache(self, entry: _Entry) -> None:
        if self._cache is None or not entry.etag:
            return
        value = entry.serialize()
        try:
            await self._cache.set(self._cache_key, value)
        except Exception as exc:
            logger.warning("%s: writing the cache failed (%s)", self._name, type(exc).__name__)
            return
        self._written = value
        self._read = (value, entry)


def _same_base(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")
