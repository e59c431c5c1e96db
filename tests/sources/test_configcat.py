"""ConfigCat against real servers on 127.0.0.1, with ConfigCat's own SDK as the oracle.

The "CDN" servers speak TLS as ``cdn-global.configcat.com`` and ``cdn-eu.configcat.com`` behind
a loopback CONNECT proxy, so both this source and the SDK run with their default base URLs
and nothing is patched; the only seam used is ``_CDN`` (our own), in one test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import configcatclient
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from anyio.abc import SocketAttribute
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.interfaces import ConfigCache
from configcatclient.pollingmode import PollingMode
from configcatclient.user import User as SdkUser
from multidict import CIMultiDict
from process_helpers import free_port

from aioconfig import InitialLoadError, ParseError, SourceError, SourceUnavailable, load
from aioconfig.flags import User
from aioconfig.sources import ConfigCat, NotModified, Payload, _configcat

pytestmark = pytest.mark.anyio

GLOBAL = "cdn-global.configcat.com"
EU = "cdn-eu.configcat.com"


def sdk_key() -> str:
    """A fresh well-formed key: the SDK hands out one shared client per key."""
    return f"configcat-sdk-1/{uuid.uuid4().hex[:22]}/{uuid.uuid4().hex[:22]}"


KEY = sdk_key()

DOCUMENT: dict[str, Any] = {
    "p": {"u": f"https://{GLOBAL}", "r": 0, "s": "aioconfig-test-salt"},
    "s": [{"n": "Beta users", "r": [{"a": "Email", "c": 32, "l": ["@example.com"]}]}],
    "f": {
        "newCheckout": {
            "t": 0,
            "v": {"b": False},
            "i": "nc-off",
            "r": [
                {
                    "c": [{"u": {"a": "Country", "c": 0, "l": ["HU", "AT"]}}],
                    "s": {"v": {"b": True}, "i": "nc-country"},
                },
                {"c": [{"s": {"s": 0, "c": 0}}], "s": {"v": {"b": True}, "i": "nc-beta"}},
            ],
        },
        "discount": {
            "t": 2,
            "v": {"i": 0},
            "i": "d-none",
            "r": [
                {
                    "c": [{"u": {"a": "plan", "c": 28, "s": "pro"}}],
                    "p": [
                        {"p": 30, "v": {"i": 10}, "i": "d-10"},
                        {"p": 70, "v": {"i": 20}, "i": "d-20"},
                    ],
                }
            ],
            "p": [{"p": 50, "v": {"i": 5}, "i": "d-5"}, {"p": 50, "v": {"i": 0}, "i": "d-0"}],
        },
        "banner": {
            "t": 1,
            "v": {"s": "plain"},
            "i": "b-plain",
            "r": [
                {
                    "c": [{"p": {"f": "newCheckout", "c": 0, "v": {"b": True}}}],
                    "s": {"v": {"s": "shiny"}, "i": "b-shiny"},
                }
            ],
        },
        "ratio": {
            "t": 3,
            "v": {"d": 0.5},
            "i": "r-half",
            "r": [
                {
                    "c": [{"u": {"a": "Version", "c": 8, "s": "2.0.0"}}],
                    "s": {"v": {"d": 0.75}, "i": "r-more"},
                }
            ],
        },
    },
}
DEFAULTS: dict[str, Any] = {"newCheckout": False, "discount": -1, "banner": "", "ratio": 0.0}
USERS: list[dict[str, Any] | None] = [
    None,
    {"identifier": "1"},
    {"identifier": "2", "country": "HU"},
    {"identifier": "3", "email": "ada@example.com"},
    {"identifier": "4", "custom": {"plan": "pro"}},
    *({"identifier": str(i), "custom": {"plan": "pro"}} for i in range(10, 20)),
    *({"identifier": str(i)} for i in range(20, 30)),
    {"identifier": "5", "custom": {"Version": "2.1.0"}},
    {"identifier": "6", "custom": {"Version": "not a version"}},
]


def ours(user: dict[str, Any] | None) -> User | None:
    return None if user is None else User(**user)


def theirs(user: dict[str, Any] | None) -> Any:
    return None if user is None else SdkUser(**user)  # type: ignore[no-untyped-call]


def flag(value: str) -> dict[str, Any]:
    """A document with one string flag ``where`` (which server answered) and preferences."""
    return {"f": {"where": {"t": 1, "v": {"s": value}}}}


def with_redirect(document: dict[str, Any], url: str, redirect: int) -> dict[str, Any]:
    return {**document, "p": {"u": url, "r": redirect}}


# ---------------------------------------------------------------- servers


class Cdn:
    """A ConfigCat CDN stand-in: ``document`` for any SDK key, with an ETag; logs each request.

    It answers 304 exactly when If-None-Match matches the current ETag.
    """

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document: dict[str, Any] = DOCUMENT if document is None else document
        self.raw: bytes | None = None  # served instead of the document when set
        self.status = 200
        self.etags = True
        self.requests: list[CIMultiDict[str]] = []
        self.paths: list[str] = []

    @property
    def body(self) -> bytes:
        return self.raw if self.raw is not None else json.dumps(self.document).encode()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.headers.copy())
        self.paths.append(request.path)
        if self.status != 200:
            return web.Response(status=self.status)
        headers = {"ETag": self.etag} if self.etags else {}
        if self.etags and request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = "application/json"
        return web.Response(body=self.body, headers=headers)


@asynccontextmanager
async def serve(cdn: Cdn, tls: ssl.SSLContext | None = None) -> AsyncIterator[TestServer]:
    """``cdn`` on a free loopback port. No access log: it would quote the SDK key."""
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await cdn.handle(request)

    app.router.add_get("/{path:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=tls, access_log=None)
    try:
        yield server
    finally:
        await server.close()


def base(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext
    ca_file: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA and a certificate for both CDN host names and 127.0.0.1 (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    where = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=where, check=True, capture_output=True)

    run(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=aioconfig test CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=aioconfig-test")
    (where / "leaf.ext").write_text(
        f"subjectAltName=DNS:{GLOBAL},DNS:{EU},IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    run(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", "1", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem",
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(where / "leaf.pem", where / "leaf.key")
    ca_file = str(where / "ca.pem")
    return Tls(server, ssl.create_default_context(cafile=ca_file), ca_file)


@asynccontextmanager
async def connect_proxy(routes: dict[str, int]) -> AsyncIterator[str]:
    """An HTTP CONNECT proxy on loopback tunnelling ``host:443`` to local port ``routes[host]``.

    Anything else gets a 403: a request meant for the real CDN never leaves the machine.
    """

    async def pipe(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            async for chunk in source:
                await sink.send(chunk)
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await sink.send_eof()

    async def tunnel(client: anyio.abc.SocketStream) -> None:
        # A client that goes away mid-handshake ends its tunnel, never the proxy.
        with suppress(OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            async with client:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await client.receive()
                method, _, rest = head.partition(b" ")
                host, _, port = rest.partition(b" ")[0].decode().rpartition(":")
                if method != b"CONNECT" or port != "443" or host not in routes:
                    await client.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                async with await anyio.connect_tcp("127.0.0.1", routes[host]) as upstream:
                    await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(pipe, client, upstream)
                        await pipe(upstream, client)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, tunnel)
        yield f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
        tg.cancel_scope.cancel()


@dataclass
class Cdns:
    """The two CDN servers (TLS) and the proxy that reaches them by their real names."""

    global_: Cdn
    eu: Cdn
    proxy: str
    tls: Tls

    def counts(self) -> tuple[int, int]:
        return len(self.global_.requests), len(self.eu.requests)

    def reset(self) -> None:
        self.global_.requests.clear()
        self.eu.requests.clear()


@pytest.fixture
async def cdns(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cdns]:
    # requests (the SDK) trusts this CA through the environment: no patching of the SDK.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_file)
    global_, eu = Cdn(flag("global")), Cdn(flag("eu"))
    async with serve(global_, tls.server) as g, serve(eu, tls.server) as e:
        assert g.port is not None and e.port is not None
        async with connect_proxy({GLOBAL: g.port, EU: e.port}) as proxy:
            yield Cdns(global_, eu, proxy, tls)


# ---------------------------------------------------------------- the SDK


@contextmanager
def sdk(key: str, **options: Any) -> Iterator[Any]:
    """A configcat-client in manual polling mode, closed on exit."""
    polling = PollingMode.manual_poll()  # type: ignore[no-untyped-call]
    client = configcatclient.get(  # type: ignore[no-untyped-call]
        key, ConfigCatOptions(polling_mode=polling, **options)
    )
    try:
        yield client
    finally:
        client.close()


async def sdk_refresh(client: Any) -> None:
    """``force_refresh`` in a thread: the servers run on this event loop."""
    result = await anyio.to_thread.run_sync(client.force_refresh)
    assert result.is_success, result.error


class MemoryCache:
    """An aioconfig Cache over a dict shared with an SDK ``ConfigCache`` (as Redis would be)."""

    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = store
        self.fail = False

    async def get(self, key: str) -> bytes | None:
        if self.fail:
            raise OSError("the cache is down")
        return self.store.get(key)

    async def set(self, key: str, value: bytes) -> None:
        if self.fail:
            raise OSError("the cache is down")
        self.store[key] = value


class SdkCache(ConfigCache):
    """The SDK's side of the same store: it deals in str, UTF-8 on the wire."""

    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        value = self.store.get(key)
        return None if value is None else value.decode()

    def set(self, key: str, value: str) -> None:
        self.store[key] = value.encode()


def cache_key(key: str) -> str:
    """The SDK's cache key, as configservice.py builds it."""
    return hashlib.sha1(f"{key}_config_v6.json_v2".encode()).hexdigest()


def entry(fetch_time: float, etag: str, document: dict[str, Any]) -> bytes:
    """A cache entry in the SDK's format (configentry.py)."""
    return f"{int(fetch_time * 1000)}\n{etag}\n{json.dumps(document)}".encode()


async def load_result(source: ConfigCat, token: Any = None) -> Payload | NotModified:
    return await source.load(token)


async def load_error(source: ConfigCat, token: Any = None) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await source.load(token)
    return caught.value


# ---------------------------------------------------------------- end to end, against the SDK


async def test_same_values_as_the_sdk_for_every_user() -> None:
    key = sdk_key()
    seen: dict[str, set[Any]] = {name: set() for name in DEFAULTS}
    async with serve(Cdn()) as server:
        async with load(ConfigCat(key, base_url=base(server)), mode="manual") as config:
            with sdk(key, base_url=base(server)) as client:
                await sdk_refresh(client)
                for user in USERS:
                    for name, default in DEFAULTS.items():
                        value = config.get_value(name, default, ours(user))
                        assert value == client.get_value(name, default, theirs(user)), (name, user)
                        seen[name].add(value)
    # Every path was taken: rules, a segment, a prerequisite, percentage options.
    assert seen == {
        "newCheckout": {False, True},
        "discount": {0, 5, 10, 20},
        "banner": {"plain", "shiny"},
        "ratio": {0.5, 0.75},
    }


async def test_conditional_requests_and_a_change_picked_up_by_refresh() -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server))
        async with load(source, mode="manual") as config:
            assert config.get_value("banner", "", User("1", country="HU")) == "shiny"
            assert "If-None-Match" not in cdn.requests[0]
            assert cdn.requests[0]["X-ConfigCat-UserAgent"].startswith("aioconfig/")
            assert cdn.paths[0] == f"/configuration-files/{KEY}/config_v6.json"

            result = await config.refresh(force=True)
            assert not result.changed and result.error is None
            assert cdn.requests[1]["If-None-Match"] == cdn.etag

            changed = json.loads(json.dumps(DOCUMENT))
            changed["f"]["ratio"]["v"] = {"d": 0.25}
            cdn.document = changed
            async with config.changes() as events:
                result = await config.refresh(force=True)
                with anyio.fail_after(1):
                    event = await events.__anext__()
            assert result.changed and result.flags == {"ratio"}
            assert event.flags == {"ratio"}
            assert config.get_value("ratio", 0.0) == 0.25
            assert len(cdn.requests) == 3


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"f": {"x": {"t": "bool"}}}'])
async def test_a_bad_document_is_refused_and_the_last_good_flags_keep_serving(
    body: bytes,
) -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        async with load(ConfigCat(KEY, base_url=base(server)), mode="manual") as config:
            cdn.raw = body
            result = await config.refresh(force=True)
            assert isinstance(result.error, ParseError)
            assert not result.error.transient
            assert result.error.source == f"configcat:****{KEY[-4:]}"
            assert config.get_value("ratio", 0.0) == 0.5


async def test_403_and_404_fail_start_up_at_once() -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        for status in (403, 404):
            cdn.status = status
            with pytest.raises(InitialLoadError) as caught:
                async with load(ConfigCat(KEY, base_url=base(server)), max_init_wait=5):
                    pass  # pragma: no cover
            (error,) = caught.value.errors
            assert type(error) is SourceError and not error.transient
            assert "invalid SDK key or config not found" in str(error)
            # optional=True does not hide a wrong key.
            optional = ConfigCat(KEY, base_url=base(server), optional=True)
            with pytest.raises(InitialLoadError):
                async with load(optional):
                    pass  # pragma: no cover


async def test_transient_failures() -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server), timeout=0.2)
        try:
            for status in (500, 503, 429):
                cdn.status = status
                error = await load_error(source)
                assert isinstance(error, SourceUnavailable) and error.transient
                assert f"HTTP {status}" in str(error)
            cdn.status = 418
            error = await load_error(source)
            assert not error.transient
        finally:
            await source.aclose()
    refused = ConfigCat(KEY, base_url=f"http://127.0.0.1:{free_port()}")
    try:
        error = await load_error(refused)
        assert isinstance(error, SourceUnavailable) and "connection refused" in str(error)
    finally:
        await refused.aclose()


async def test_a_timeout_is_transient() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await anyio.sleep(5)
        return web.Response()  # pragma: no cover

    app = web.Application()
    app.router.add_get("/{path:.*}", slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    source = ConfigCat(KEY, base_url=base(server), timeout=0.05)
    try:
        error = await load_error(source)
        assert isinstance(error, SourceUnavailable) and "timed out after 0.05s" in str(error)
    finally:
        await source.aclose()
        await server.close()


async def test_body_over_max_bytes_is_refused() -> None:
    async with serve(Cdn()) as server:
        source = ConfigCat(KEY, base_url=base(server), max_bytes=100)
        try:
            error = await load_error(source)
            assert "exceeds max_bytes=100" in str(error) and not error.transient
        finally:
            await source.aclose()


async def test_tokens_etag_and_digest() -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server))
        try:
            first = await load_result(source)
            assert isinstance(first, Payload) and first.data == {} and first.flags is not None
            assert sorted(first.flags) == sorted(DOCUMENT["f"])
            again = await load_result(source, first.token)
            assert isinstance(again, NotModified) and again.token == first.token
            # Without ETags: the same body again is not modified either (by its digest).
            cdn.etags = False
            plain = await load_result(source)
            assert isinstance(plain, Payload)
            assert "If-None-Match" not in cdn.requests[-1]
            same = await load_result(source, plain.token)
            assert isinstance(same, NotModified)
            assert "If-None-Match" not in cdn.requests[-1]
        finally:
            await source.aclose()


async def test_closed_source_refuses_to_load() -> None:
    async with serve(Cdn()) as server:
        source = ConfigCat(KEY, base_url=base(server))
        await source.load(None)
        await source.aclose()
        await source.aclose()
        assert "closed" in str(await load_error(source))


# ---------------------------------------------------------------- redirects, against the SDK


@dataclass(frozen=True)
class Run:
    counts: tuple[tuple[int, int], ...]  # (global, eu) requests after start and each refresh
    where: tuple[str, ...]  # which server's flags served, after each


async def run_ours(cdns: Cdns, key: str, refreshes: int, **options: Any) -> Run:
    cdns.reset()
    counts, where = [], []
    source = ConfigCat(key, proxy=cdns.proxy, ssl=cdns.tls.client, **options)
    async with load(source, mode="manual") as config:
        for i in range(refreshes + 1):
            if i:
                result = await config.refresh(force=True)
                assert result.error is None
            counts.append(cdns.counts())
            where.append(config.get_value("where", ""))
    return Run(tuple(counts), tuple(where))


async def run_sdk(cdns: Cdns, key: str, refreshes: int, **options: Any) -> Run:
    cdns.reset()
    counts, where = [], []
    with sdk(key, proxies={"https": cdns.proxy}, **options) as client:
        for _ in range(refreshes + 1):
            await sdk_refresh(client)
            counts.append(cdns.counts())
            where.append(client.get_value("where", ""))
    return Run(tuple(counts), tuple(where))


@pytest.mark.parametrize("redirect", [0, 1, 2])
@pytest.mark.parametrize("explicit", [False, True], ids=["default-base", "base_url"])
async def test_redirects_as_the_sdk_does(
    cdns: Cdns, redirect: int, explicit: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The global CDN says: this config lives in the EU.
    cdns.global_.document = with_redirect(flag("global"), f"https://{EU}", redirect)
    cdns.eu.document = with_redirect(flag("eu"), f"https://{EU}", redirect)
    options = {"base_url": f"https://{GLOBAL}"} if explicit else {}
    key = sdk_key()
    with caplog.at_level(logging.WARNING, logger="aioconfig"):
        mine = await run_ours(cdns, key, 2, **options)
    assert mine == await run_sdk(cdns, key, 2, **options)
    expected = {
        (True, 0): ((1, 0), (2, 0), (3, 0)),
        (True, 1): ((1, 0), (2, 0), (3, 0)),
        (True, 2): ((1, 1), (1, 2), (1, 3)),
        (False, 0): ((1, 0), (1, 1), (1, 2)),
        (False, 1): ((1, 1), (1, 2), (1, 3)),
        (False, 2): ((1, 1), (1, 2), (1, 3)),
    }
    assert mine.counts == expected[explicit, redirect]
    warned = [
        r
        for r in caplog.records
        if r.name == "aioconfig.sources.configcat" and "not in sync" in r.message
    ]
    assert len(warned) == (1 if (redirect, explicit) == (1, False) else 0)


async def test_a_redirect_loop_is_bounded_as_the_sdk_bounds_it(
    cdns: Cdns, caplog: pytest.LogCaptureFixture
) -> None:
    cdns.global_.document = with_redirect(flag("global"), f"https://{EU}", 2)
    cdns.eu.document = with_redirect(flag("eu"), f"https://{GLOBAL}", 2)
    key = sdk_key()
    with caplog.at_level(logging.ERROR, logger="aioconfig"):
        mine = await run_ours(cdns, key, 1, base_url=f"https://{GLOBAL}")
    assert mine == await run_sdk(cdns, key, 1, base_url=f"https://{GLOBAL}")
    # Start: global, eu, global (logged), and the base URL is eu's. Refresh: eu, then global,
    # asked with the ETag of its own document, answers 304.
    assert mine.counts == ((2, 1), (3, 2))
    assert mine.where == ("global", "global")
    loops = [
        r
        for r in caplog.records
        if r.name == "aioconfig.sources.configcat" and "redirection loop" in r.message
    ]
    assert [r.levelno for r in loops] == [logging.ERROR]


async def test_a_redirect_from_https_to_http_is_refused(
    cdns: Cdns, caplog: pytest.LogCaptureFixture
) -> None:
    plain = Cdn(flag("plain http"))
    async with serve(plain) as server:
        downgrade = with_redirect(flag("global"), base(server), 2)
        cdns.global_.document = downgrade
        key = sdk_key()
        with caplog.at_level(logging.WARNING, logger="aioconfig"):
            mine = await run_ours(cdns, key, 1)
        assert mine.counts == ((1, 0), (2, 0)) and mine.where == ("global", "global")
        assert plain.requests == []
        assert any("from https to" in r.getMessage() for r in caplog.records)
        # The SDK follows it: the config would then travel in clear text.
        theirs_ = await run_sdk(cdns, key, 0)
        assert theirs_.where == ("plain http",) and len(plain.requests) == 1


async def test_headers_go_to_the_configured_origin_only() -> None:
    a, b = Cdn(), Cdn()
    async with serve(a) as server_a, serve(b) as server_b:
        a.document = with_redirect(DOCUMENT, base(server_b), 2)
        b.document = with_redirect(DOCUMENT, base(server_b), 2)
        source = ConfigCat(KEY, base_url=base(server_a), headers={"X-Proxy-Token": "t0ken"})
        try:
            await source.load(None)
        finally:
            await source.aclose()
        assert a.requests[0]["X-Proxy-Token"] == "t0ken"
        assert "X-Proxy-Token" not in b.requests[0]


async def test_the_cdn_mapping_picks_the_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        monkeypatch.setitem(_configcat._CDN, "eu", base(server))
        source = ConfigCat(KEY, data_governance="eu")
        try:
            assert isinstance(await source.load(None), Payload)
        finally:
            await source.aclose()
        assert len(cdn.requests) == 1
        assert repr(source) == f"ConfigCat('configcat:****{KEY[-4:]}', data_governance='eu')"


# ---------------------------------------------------------------- SDK keys


LEGACY = "A" * 22 + "/" + "b" * 22
SDK_1 = "configcat-sdk-1/" + "C" * 22 + "/" + "d" * 22


@pytest.mark.parametrize(
    ("key", "base_url", "valid"),
    [
        (LEGACY, None, True),
        (SDK_1, None, True),
        (SDK_1, "http://proxy.internal", True),
        ("configcat-proxy/my-config", "http://proxy.internal:8050", True),
        ("configcat-proxy/my-config", None, False),
        ("configcat-proxy/", "http://proxy.internal", False),
        ("A" * 21 + "/" + "b" * 22, None, False),
        ("configcat-sdk-1/" + "C" * 22 + "/" + "d" * 21, None, False),
        ("configcat-sdk-2/" + "C" * 22 + "/" + "d" * 22, None, False),
        (LEGACY + "\n", None, False),  # the SDK's re.match(...$) would take this one
        ("", None, False),
    ],
)
def test_sdk_key_validation(key: str, base_url: str | None, valid: bool) -> None:
    if valid:
        ConfigCat(key, base_url=base_url)
        return
    with pytest.raises(ValueError) as caught:
        ConfigCat(key, base_url=base_url)
    secret = key.rpartition("/")[2]
    assert not secret or secret not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sdk_key": 42}, TypeError, "sdk_key must be a str, got int"),
        ({"data_governance": "us"}, ValueError, "data_governance must be 'global' or 'eu'"),
        ({"base_url": "ftp://x"}, ValueError, "base_url must be an absolute http://"),
        ({"base_url": "http://u:p@x"}, ValueError, "base_url must not contain user:password@"),
        ({"base_url": "http://x/?a=1"}, ValueError, "base_url must not have a query"),
        ({"poll_interval": 0}, ValueError, "poll_interval must be a finite number > 0"),
        ({"timeout": "1"}, TypeError, "timeout must be a number of seconds, got str"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be >= 1, got 0"),
        ({"cache": {}}, TypeError, "cache must have async get(key) and set(key, value)"),
        ({"ssl": True}, TypeError, "ssl must be an ssl.SSLContext or None, got bool"),
        ({"proxy": "socks5://p:1"}, ValueError, "proxy must be an absolute http://"),
        ({"headers": {"X-A": "b\r\nc"}}, ValueError, "header 'X-A' contains a line break"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    key = kwargs.pop("sdk_key", SDK_1)
    with pytest.raises(error) as caught:
        ConfigCat(key, **kwargs)
    assert str(caught.value).startswith(message)


async def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    key = sdk_key()
    secret = key.rpartition("/")[2]
    cdn = Cdn(with_redirect(DOCUMENT, "not a url", 2))
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        async with serve(cdn) as server:
            source = ConfigCat(key, base_url=base(server), poll_interval=5)
            seen += [source.name, repr(source)]
            assert source.name == f"configcat:****{secret[-4:]}"
            assert source.refresh_interval == 5
            try:
                await source.load(None)  # logs the ignored redirect
                for status, raw in ((404, None), (503, None), (200, b"{"), (200, b"[]")):
                    cdn.status, cdn.raw = status, raw
                    seen.append(str(await load_error(source)))
            finally:
                await source.aclose()
            cdn.status = 404
            with pytest.raises(InitialLoadError) as caught:
                async with load(ConfigCat(key, base_url=base(server))):
                    pass  # pragma: no cover
            seen.append(str(caught.value))
        for broken in (
            ConfigCat(key, base_url=f"http://127.0.0.1:{free_port()}"),
            ConfigCat(key, base_url=f"https://127.0.0.1:{free_port()}", proxy="http://127.0.0.1:1"),
        ):
            try:
                error = await load_error(broken)
                seen.append(str(error))
                assert error.__cause__ is None  # aiohttp's errors quote the URL
            finally:
                await broken.aclose()
    seen += [r.getMessage() for r in caplog.records]
    seen += [r.exc_text or "" for r in caplog.records]
    assert len(seen) > 10
    for text in seen:
        assert secret not in text and key not in text, text


async def test_http_redirects_are_followed_but_never_from_https_to_http(tls: Tls) -> None:
    cdn = Cdn()

    async def moved(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/moved/"):
            return await cdn.handle(request)
        raise web.HTTPFound(f"{target}/moved{request.path}")

    app = web.Application()
    app.router.add_get("/{path:.*}", moved)
    for scheme, context in (("http", None), ("https", tls.server)):
        server = TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=context, access_log=None)
        target = base(server) if scheme == "http" else f"http://127.0.0.1:{free_port()}"
        source = ConfigCat(KEY, base_url=base(server), ssl=tls.client)
        try:
            if scheme == "http":
                assert isinstance(await source.load(None), Payload)
                assert cdn.paths == [f"/moved/configuration-files/{KEY}/config_v6.json"]
            else:
                error = await load_error(source)
                assert "refused a redirect from https to http" in str(error)
        finally:
            await source.aclose()
            await server.close()


# ---------------------------------------------------------------- the cache, shared with the SDK


async def test_an_entry_the_sdk_wrote_is_used_without_a_request() -> None:
    key, store = sdk_key(), dict[str, bytes]()
    cdn = Cdn()
    async with serve(cdn) as server:
        with sdk(key, base_url=base(server), config_cache=SdkCache(store)) as client:
            await sdk_refresh(client)
        assert list(store) == [cache_key(key)]
        fetch_ms, etag, text = store[cache_key(key)].decode().split("\n", 2)
        assert etag == cdn.etag and json.loads(text) == DOCUMENT
        assert abs(int(fetch_ms) / 1000 - time.time()) < 60

        source = ConfigCat(key, base_url=base(server), cache=MemoryCache(store))
        async with load(source, mode="manual") as config:
            assert len(cdn.requests) == 1  # the SDK's
            assert config.get_value("banner", "", User("1", country="AT")) == "shiny"
            # Still fresh: a refresh reads the cache again and asks nobody.
            result = await config.refresh(force=True)
            assert result.error is None and not result.changed
            assert len(cdn.requests) == 1


async def test_an_entry_we_wrote_is_used_by_the_sdk() -> None:
    key, store = sdk_key(), dict[str, bytes]()
    cdn = Cdn()
    async with serve(cdn) as server:
        source = ConfigCat(key, base_url=base(server), cache=MemoryCache(store))
        async with load(source, mode="manual") as config:
            assert config.get_value("ratio", 0.0) == 0.5
        assert len(cdn.requests) == 1
        fetch_ms, etag, text = store[cache_key(key)].decode().split("\n", 2)
        assert etag == cdn.etag and text.encode() == cdn.body
        assert fetch_ms.isdigit() and abs(int(fetch_ms) / 1000 - time.time()) < 60

        with sdk(key, base_url=base(server), config_cache=SdkCache(store)) as client:
            assert client.get_value("ratio", 0.0) == 0.5  # manual polling: from the cache
            assert client.get_value("banner", "", theirs({"identifier": "1", "country": "HU"}))
        assert len(cdn.requests) == 1


async def test_our_own_entry_does_not_stop_a_refresh() -> None:
    store: dict[str, bytes] = {}
    cdn = Cdn()
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server), cache=MemoryCache(store))
        async with load(source, mode="manual") as config:
            cdn.document = flag("changed")
            result = await config.refresh(force=True)
            assert result.changed and config.get_value("where", "") == "changed"
        assert len(cdn.requests) == 2
        assert store[cache_key(KEY)].decode().split("\n", 2)[2] == json.dumps(flag("changed"))


@pytest.mark.parametrize("client", ["aioconfig", "sdk"])
async def test_a_stale_entry_costs_one_conditional_request(client: str) -> None:
    key = sdk_key()
    cdn = Cdn()
    old = time.time() - 3600
    store = {cache_key(key): entry(old, cdn.etag, DOCUMENT)}
    async with serve(cdn) as server:
        if client == "aioconfig":
            source = ConfigCat(key, base_url=base(server), cache=MemoryCache(store))
            async with load(source, mode="manual") as config:
                assert config.get_value("ratio", 0.0) == 0.5
        else:  # the same, by the SDK's auto polling's rule (a refresh here)
            with sdk(key, base_url=base(server), config_cache=SdkCache(store)) as sdk_client:
                await sdk_refresh(sdk_client)
                assert sdk_client.get_value("ratio", 0.0) == 0.5
    assert len(cdn.requests) == 1 and cdn.requests[0]["If-None-Match"] == cdn.etag
    fetch_ms, etag, text = store[cache_key(key)].decode().split("\n", 2)
    assert int(fetch_ms) > old * 1000 + 3000 * 1000  # rewritten with the new fetch time
    assert etag == cdn.etag and json.loads(text) == DOCUMENT


async def test_a_stale_entry_of_another_version_is_replaced() -> None:
    store: dict[str, bytes] = {cache_key(KEY): entry(time.time() - 3600, '"old"', flag("old"))}
    cdn = Cdn(flag("new"))
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server), cache=MemoryCache(store))
        async with load(source, mode="manual") as config:
            assert config.get_value("where", "") == "new"
    assert cdn.requests[0]["If-None-Match"] == '"old"'
    assert store[cache_key(KEY)].decode().split("\n")[1] == cdn.etag


async def test_start_up_with_the_server_down_serves_the_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = {cache_key(KEY): entry(time.time() - 86400, '"e"', flag("cached"))}
    source = ConfigCat(KEY, base_url=f"http://127.0.0.1:{free_port()}", cache=MemoryCache(store))
    with caplog.at_level(logging.WARNING, logger="aioconfig"):
        async with load(source, mode="manual") as config:
            assert config.get_value("where", "") == "cached"
            # Once started, a failure is reported as usual; the flags keep serving.
            result = await config.refresh(force=True)
            assert isinstance(result.error, SourceUnavailable)
            assert config.get_value("where", "") == "cached"
    (warning,) = [r for r in caplog.records if "serving the cached config" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "connection refused" in warning.getMessage()


async def test_a_broken_cache_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    cdn = Cdn()
    async with serve(cdn) as server:
        for garbage in (
            b"not an entry",
            b'abc\n"e"\n{}',
            b'123\n\n{"f": {}}',
            b'123\n"e"\n{not json',
            b'123\n"e"\n[]',
            b"\xff\xfe\n\n",
        ):
            cache = MemoryCache({cache_key(KEY): garbage})
            source = ConfigCat(KEY, base_url=base(server), cache=cache)
            with caplog.at_level(logging.WARNING, logger="aioconfig"):
                async with load(source, mode="manual") as config:
                    assert config.get_value("ratio", 0.0) == 0.5
            assert "ignoring the cache entry" in caplog.text
            assert cache.store[cache_key(KEY)].decode().split("\n")[1] == cdn.etag
            caplog.clear()

        failing = MemoryCache({})
        failing.fail = True
        source = ConfigCat(KEY, base_url=base(server), cache=failing)
        with caplog.at_level(logging.WARNING, logger="aioconfig"):
            async with load(source, mode="manual") as config:
                assert config.get_value("ratio", 0.0) == 0.5
        assert "reading the cache failed (OSError)" in caplog.text
        assert "writing the cache failed (OSError)" in caplog.text


async def test_a_response_without_an_etag_is_not_cached() -> None:
    cdn = Cdn()
    cdn.etags = False
    store: dict[str, bytes] = {}
    async with serve(cdn) as server:
        source = ConfigCat(KEY, base_url=base(server), cache=MemoryCache(store))
        async with load(source, mode="manual") as config:
            assert config.get_value("ratio", 0.0) == 0.5
    assert store == {}


# ---------------------------------------------------------------- load()


async def test_load_polls_every_60_seconds_by_default() -> None:
    config = load(ConfigCat(KEY))
    assert config._engine.interval == 60.0
    config = load(ConfigCat(KEY, poll_interval=300), refresh_interval=10)
    assert config._engine.interval == 10.0
