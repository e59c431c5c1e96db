"""Http against real aiohttp servers on 127.0.0.1: formats, conditional requests, limits, leaks."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import AsyncIterator, Hashable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.abc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from anyio.abc import SocketAttribute
from http_helpers import Handler, open_connections, serve, wait_until
from multidict import CIMultiDict
from process_helpers import free_port

from aioconfig import InitialLoadError, load
from aioconfig._exceptions import ParseError, SourceError, SourceUnavailable
from aioconfig.sources import NotModified, Payload
from aioconfig.sources._formats import parse
from aioconfig.sources._http import Http

pytestmark = pytest.mark.anyio

SECRET = "hunter2-s3cr3t"


class Doc:
    """One document behind a URL, with optional validators; remembers every request's headers.

    It answers 304 exactly when the request carries a matching validator, as a server should.
    """

    def __init__(
        self,
        body: bytes = b'{"a": 1}',
        *,
        content_type: str = "application/json",
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = etag
        self.last_modified = last_modified
        self.status = 200
        self.requests: list[CIMultiDict[str]] = []
        self.answers: list[int] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.headers.copy())
        headers: dict[str, str] = {}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.last_modified is not None:
            headers["Last-Modified"] = self.last_modified
        status = self.status
        if status == 200:
            # RFC 9110 13.2.2: If-None-Match, when present, decides alone.
            if "If-None-Match" in request.headers:
                if request.headers["If-None-Match"] == self.etag:
                    status = 304
            elif (
                self.last_modified is not None
                and request.headers.get("If-Modified-Since") == self.last_modified
            ):
                status = 304
        self.answers.append(status)
        if status == 304:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = self.content_type
        body = self.body if status == 200 else b""
        return web.Response(status=status, body=body, headers=headers)


async def load_payload(source: Http, token: Hashable | None = None) -> Payload:
    result = await source.load(token)
    assert isinstance(result, Payload)
    return result


async def load_error(source: Http, token: Hashable | None = None) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await source.load(token)
    return caught.value


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the parses Http does (names of the sources parsed)."""
    calls: list[str] = []

    def counting(data: bytes, format: Any, source: str) -> dict[str, Any]:
        calls.append(source)
        return parse(data, format, source)

    monkeypatch.setattr("aioconfig.sources._http.parse", counting)
    return calls


# ---------------------------------------------------------------- construction


def test_name_hides_userinfo_and_query_values() -> None:
    source = Http(
        f"https://bob:{SECRET}@config.example:8443/app/conf.json?token={SECRET}&env=prod#x"
    )
    assert source.name == "https://config.example:8443/app/conf.json?token=***&env=***"
    assert repr(source) == "Http('https://config.example:8443/app/conf.json?token=***&env=***')"
    assert Http(f"http://h/c?{SECRET}").name == "http://h/c?***"
    assert Http("http://h/c.toml", format="toml").format == "toml"
    assert repr(Http("http://h/c", format="yaml")) == "Http('http://h/c', format='yaml')"
    assert Http("http://h/c").optional is False
    assert Http("http://h/c", optional=True).optional is True


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"url": f"ftp://u:{SECRET}@h/c.json"}, ValueError, "url must be an absolute http://"),
        ({"url": "/c.json"}, ValueError, "url must be an absolute http:// or https:// URL"),
        ({"format": "xml"}, ValueError, "unknown format 'xml'; expected one of: env, ini"),
        ({"timeout": 0}, ValueError, "timeout must be a finite number > 0, got 0"),
        ({"timeout": "1"}, TypeError, "timeout must be a number of seconds, got str"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be >= 1, got 0"),
        ({"max_redirects": -1}, ValueError, "max_redirects must be >= 0, got -1"),
        ({"max_redirects": True}, TypeError, "max_redirects must be an int, got bool"),
        ({"proxy": "socks5://p:1080"}, ValueError, "proxy must be an absolute http://"),
        ({"headers": {"X-Api-Key": f"{SECRET}\r\nX: y"}}, ValueError, "header 'X-Api-Key'"),
        ({"ssl": False}, TypeError, "ssl must be an ssl.SSLContext or None, got bool"),
        ({"session": object()}, TypeError, "session must be an aiohttp.ClientSession"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    url = kwargs.pop("url", "http://h/c.json")
    with pytest.raises(error) as caught:
        Http(url, **kwargs)
    assert str(caught.value).startswith(message)
    assert SECRET not in str(caught.value)


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"db": {"port": 5432}}'),
        ("application/json; charset=utf-8", b'{"db": {"port": 5432}}'),
        ("application/vnd.example.config+json", b'{"db": {"port": 5432}}'),
        ("application/toml", b"[db]\nport = 5432\n"),
        ("application/yaml", b"db:\n  port: 5432\n"),
        ("application/x-yaml", b"db:\n  port: 5432\n"),
        ("text/yaml", b"db:\n  port: 5432\n"),
        ("Text/YAML; charset=UTF-8", b"db:\n  port: 5432\n"),
    ],
)
async def test_format_from_content_type(content_type: str, body: bytes) -> None:
    async with serve(("/config", Doc(body, content_type=content_type))) as server:
        async with aclosing(Http(server.make_url("/config"))) as source:
            payload = await load_payload(source)
    assert payload.data == {"db": {"port": 5432}}


async def test_format_argument_wins_over_content_type() -> None:
    doc = Doc(b"[db]\nport = 1\n", content_type="application/json")
    async with serve(("/config.json", doc)) as server:
        async with aclosing(Http(server.make_url("/config.json"), format="toml")) as source:
            assert (await load_payload(source)).data == {"db": {"port": 1}}
    assert doc.requests[0]["Accept"] == "application/toml, */*;q=0.1"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/app.yaml", "text/plain", b"a: 1\n"),
        ("/app.toml", "application/octet-stream", b"a = 1\n"),
        ("/.env", "text/plain; charset=utf-8", b"a=1\n"),
        ("/app.yml", "garbled header", b"a: 1\n"),
    ],
)
async def test_format_falls_back_to_the_url_suffix(
    path: str, content_type: str, body: bytes
) -> None:
    async with serve((path, Doc(body, content_type=content_type))) as server:
        async with aclosing(Http(server.make_url(path).with_query(v="2"))) as source:
            assert (await load_payload(source)).data in ({"a": 1}, {"a": "1"})


async def test_unknown_format(parses: list[str]) -> None:
    async with serve(("/config", Doc(content_type="application/xml"))) as server:
        async with aclosing(Http(server.make_url("/config"))) as source:
            error = await load_error(source)
    assert type(error) is ParseError
    assert str(error) == (
        f"{source.name}: cannot tell the format of content type 'application/xml' from a URL "
        "without a known suffix; pass format= one of: env, ini, json, toml, yaml"
    )
    assert error.source == source.name and not error.transient
    assert parses == []


@asynccontextmanager
async def raw_http(answer: bytes) -> AsyncIterator[str]:
    """A server that sends ``answer`` as is to every connection: aiohttp's server always adds
    a Content-Type, and some servers do not."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()  # the request head
            await stream.send(answer)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


NO_CONTENT_TYPE = b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{"a": 1}'


async def test_no_content_type_uses_the_url_suffix() -> None:
    async with raw_http(NO_CONTENT_TYPE) as base:
        async with aclosing(Http(base + "/app.json")) as source:
            assert (await load_payload(source)).data == {"a": 1}


async def test_no_content_type_and_no_suffix() -> None:
    async with raw_http(NO_CONTENT_TYPE) as base:
        async with aclosing(Http(base + "/config")) as source:
            error = await load_error(source)
    assert type(error) is ParseError
    assert str(error) == (
        f"{source.name}: cannot tell the format of a response without a Content-Type from a "
        "URL without a known suffix; pass format= one of: env, ini, json, toml, yaml"
    )


async def test_an_html_page_is_not_configuration_even_at_a_json_url() -> None:
    doc = Doc(b"<html>Please log in</html>", content_type="text/html; charset=utf-8")
    async with serve(("/config.json", doc)) as server:
        async with aclosing(Http(server.make_url("/config.json"))) as source:
            error = await load_error(source)
    assert type(error) is ParseError
    assert str(error) == (
        f"{source.name}: expected a configuration document, got content type 'text/html'"
    )


@pytest.mark.parametrize(
    ("body", "where", "problem"),
    [
        (b'{"a": 1,\n "b": ', ":2:7: ", "unexpected end of data"),
        (b'{"a": 1}\n{"b"', ":2:1: ", "unexpected content after document"),
    ],
)
async def test_malformed_body_is_a_parse_error_with_its_position(
    body: bytes, where: str, problem: str
) -> None:
    async with serve(("/c.json", Doc(body))) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            error = await load_error(source)
    assert isinstance(error, ParseError) and error.line is not None and error.column is not None
    assert str(error) == source.name + where + problem


# ---------------------------------------------------------------- conditional requests


async def test_etag_makes_the_next_request_conditional(parses: list[str]) -> None:
    doc = Doc(etag='W/"v1"')
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            first = await load_payload(source)
            second = await source.load(first.token)
    assert "If-None-Match" not in doc.requests[0]
    assert doc.requests[1]["If-None-Match"] == 'W/"v1"'
    assert "If-Modified-Since" not in doc.requests[1]
    assert doc.answers == [200, 304]
    assert isinstance(second, NotModified) and second.token == first.token
    assert hash(second.token) == hash(first.token)
    assert parses == [source.name]  # the 304 was not parsed


async def test_last_modified_makes_the_next_request_conditional(parses: list[str]) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    doc = Doc(last_modified=stamp)
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            first = await load_payload(source)
            second = await source.load(first.token)
    assert doc.requests[1]["If-Modified-Since"] == stamp
    assert "If-None-Match" not in doc.requests[1]
    assert doc.answers == [200, 304]
    assert isinstance(second, NotModified)
    assert len(parses) == 1


async def test_a_changed_document_is_fetched_again() -> None:
    doc = Doc(b'{"a": 1}', etag='"1"', last_modified="Wed, 21 Oct 2015 07:28:00 GMT")
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            first = await load_payload(source)
            doc.body, doc.etag = b'{"a": 2}', '"2"'
            second = await load_payload(source, first.token)
    assert doc.requests[1]["If-None-Match"] == '"1"'
    assert doc.requests[1]["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert second.data == {"a": 2} and second.token != first.token


async def test_the_same_body_without_validators_is_not_parsed_again(parses: list[str]) -> None:
    doc = Doc(b'{"a": 1}')
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            first = await load_payload(source)
            second = await source.load(first.token)
            doc.body = b'{"a": 2}'
            third = await load_payload(source, second.token)
    assert doc.answers == [200, 200, 200]
    assert isinstance(second, NotModified) and second.token == first.token
    assert third.data == {"a": 2}
    assert len(parses) == 2


async def test_the_same_body_with_a_new_etag_keeps_the_new_etag(parses: list[str]) -> None:
    doc = Doc(etag='"1"')
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            first = await load_payload(source)
            doc.etag = '"2"'  # a redeploy that changed nothing
            second = await source.load(first.token)
            third = await source.load(second.token)
    assert isinstance(second, NotModified) and second.token != first.token
    assert doc.requests[2]["If-None-Match"] == '"2"'
    assert doc.answers == [200, 200, 304] and isinstance(third, NotModified)
    assert len(parses) == 1


async def test_a_304_without_a_conditional_request_is_an_error() -> None:
    doc = Doc()
    doc.status = 304
    async with serve(("/c.json", doc)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            error = await load_error(source)
    assert str(error) == f"{source.name}: HTTP 304 Not Modified to an unconditional request"


# ---------------------------------------------------------------- status codes and failures


@pytest.mark.parametrize(
    ("status", "kind", "transient", "problem"),
    [
        (500, SourceUnavailable, True, "HTTP 500 Internal Server Error"),
        (502, SourceUnavailable, True, "HTTP 502 Bad Gateway"),
        (503, SourceUnavailable, True, "HTTP 503 Service Unavailable"),
        (504, SourceUnavailable, True, "HTTP 504 Gateway Timeout"),
        (599, SourceUnavailable, True, "HTTP 599"),
        (408, SourceUnavailable, True, "HTTP 408 Request Timeout"),
        (429, SourceUnavailable, True, "HTTP 429 Too Many Requests"),
        (404, SourceUnavailable, False, "HTTP 404 Not Found"),
        (410, SourceUnavailable, False, "HTTP 410 Gone"),
        (401, SourceError, False, "HTTP 401 Unauthorized"),
        (403, SourceError, False, "HTTP 403 Forbidden"),
        (400, SourceError, False, "HTTP 400 Bad Request"),
        (418, SourceError, False, "HTTP 418 I'm a Teapot"),
        (204, SourceError, False, "HTTP 204 No Content"),
    ],
)
async def test_status_codes(
    status: int, kind: type[SourceError], transient: bool, problem: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, reason="leaky " + SECRET, text=SECRET)

    async with serve(("/c.json", answer)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            error = await load_error(source)
    assert type(error) is kind
    assert error.transient is transient
    assert str(error) == f"{source.name}: {problem}"  # the standard phrase, not the server's


async def test_connection_refused() -> None:
    async with aclosing(Http(f"http://127.0.0.1:{free_port()}/c.json")) as source:
        error = await load_error(source)
    assert type(error) is SourceUnavailable and error.transient
    assert str(error) == f"{source.name}: connection refused"


async def test_timeout_covers_a_slow_answer() -> None:
    release = anyio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"a": 1})

    async with serve(("/c.json", slow)) as server:
        source = Http(server.make_url("/c.json"), timeout=0.1)
        try:
            with anyio.fail_after(5):
                error = await load_error(source)
        finally:
            release.set()
            await source.aclose()
    assert type(error) is SourceUnavailable and error.transient
    assert str(error) == f"{source.name}: timed out after 0.1s"


async def test_timeout_covers_a_body_that_trickles() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"a": ')
        await anyio.sleep(5)
        return response

    async with serve(("/c.json", trickle)) as server:
        async with aclosing(Http(server.make_url("/c.json"), timeout=0.1)) as source:
            with anyio.fail_after(5):
                error = await load_error(source)
    assert str(error) == f"{source.name}: timed out after 0.1s"


async def test_connection_lost_mid_body() -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b'{"a": "' + b"x" * 100)
        assert request.transport is not None
        request.transport.abort()
        return response

    async with serve(("/c.json", cut)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            error = await load_error(source)
    assert type(error) is SourceUnavailable and error.transient
    assert str(error) == f"{source.name}: connection lost mid-body"


async def test_load_after_aclose_is_refused() -> None:
    source = Http("http://127.0.0.1:1/c.json")
    await source.aclose()
    await source.aclose()  # idempotent
    error = await load_error(source)
    assert str(error) == "http://127.0.0.1:1/c.json: this source is closed"


# ---------------------------------------------------------------- redirects


def redirect(to: str, status: int = 302) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": to})

    return handler


async def test_redirects_are_followed() -> None:
    doc = Doc(b'{"a": "moved"}')
    async with serve(
        ("/old.json", redirect("/mid", 301)),
        ("/mid", redirect("new.json", 307)),  # relative to /mid
        ("/new.json", doc),
    ) as server:
        async with aclosing(
            Http(server.make_url("/old.json"), max_redirects=2, headers={"X-Api-Key": "k"})
        ) as source:
            assert (await load_payload(source)).data == {"a": "moved"}
    assert doc.requests[0]["X-Api-Key"] == "k"  # same origin: headers kept


@pytest.mark.parametrize(("hops", "max_redirects"), [(3, 2), (1, 0)])
async def test_redirects_are_bounded(hops: int, max_redirects: int) -> None:
    routes = [(f"/r{i}", redirect(f"/r{i + 1}")) for i in range(hops)]
    async with serve(*routes, (f"/r{hops}", Doc())) as server:
        async with aclosing(Http(server.make_url("/r0"), max_redirects=max_redirects)) as source:
            error = await load_error(source)
    assert type(error) is SourceError and not error.transient
    assert str(error) == f"{source.name}: too many redirects (max_redirects={max_redirects})"


async def test_a_redirect_loop_is_named() -> None:
    async with serve(("/a", redirect("/b")), ("/b", redirect("/a"))) as server:
        async with aclosing(Http(server.make_url("/a"))) as source:
            error = await load_error(source)
    assert str(error) == f"{source.name}: redirect loop"


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        (None, "HTTP 302 Found without a Location header"),
        ("ftp://elsewhere/c.json", "redirected to a URL that is not http(s)"),
    ],
)
async def test_bad_redirects(location: str | None, problem: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={} if location is None else {"Location": location})

    async with serve(("/c.json", handler)) as server:
        async with aclosing(Http(server.make_url("/c.json"))) as source:
            error = await load_error(source)
    assert str(error) == f"{source.name}: {problem}"


async def test_a_redirect_to_another_origin_carries_no_credentials() -> None:
    doc = Doc()
    async with serve(("/c.json", doc)) as elsewhere:
        target = str(elsewhere.make_url("/c.json"))
        async with serve(("/c.json", redirect(target))) as origin:
            url = origin.make_url("/c.json").with_user("bob").with_password(SECRET)
            async with aclosing(
                Http(url, headers={"X-Api-Key": SECRET, "Cookie": f"s={SECRET}"})
            ) as source:
                first = await load_payload(source)
                await source.load(first.token)
    for headers in doc.requests:
        assert not {"Authorization", "X-Api-Key", "Cookie"} & set(headers)
        assert SECRET not in str(headers)
    assert "If-None-Match" not in doc.requests[1]  # no ETag given
    assert len(doc.requests) == 2


# ---------------------------------------------------------------- max_bytes


class Stream:
    """Streams up to ``total`` bytes in 64 KiB writes; counts what it managed to send."""

    def __init__(self, total: int, *, content_length: bool) -> None:
        self.total = total
        self.content_length = content_length
        self.sent = 0
        self.done = anyio.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.content_length:
            response.content_length = self.total
        try:
            await response.prepare(request)
            chunk = b" " * 65536
            while self.sent < self.total:
                await response.write(chunk)
                self.sent += len(chunk)
        except (ConnectionError, aiohttp.ClientConnectionError):
            pass  # the client hung up
        finally:
            self.done.set()
        return response


@pytest.mark.parametrize("content_length", [True, False])
async def test_a_body_over_max_bytes_is_cut_off_without_reading_it_all(
    content_length: bool,
) -> None:
    huge = Stream(1 << 30, content_length=content_length)  # a 1 GiB body
    async with serve(("/c.json", huge)) as server:
        async with aclosing(Http(server.make_url("/c.json"), max_bytes=256 * 1024)) as source:
            with anyio.fail_after(10):
                error = await load_error(source)
                await huge.done.wait()  # the server noticed the client had gone
    assert type(error) is SourceError and not error.transient
    if content_length:
        assert str(error) == (
            f"{source.name}: response body of 1073741824 bytes exceeds max_bytes=262144"
        )
    else:
        assert str(error) == f"{source.name}: response body exceeds max_bytes=262144"
    # Whatever the socket buffers took in before the client hung up: a sliver of the body.
    assert huge.sent < 64 << 20


@pytest.mark.parametrize("content_length", [True, False])
async def test_a_body_of_exactly_max_bytes_is_fine(content_length: bool) -> None:
    body = b'{"a": "' + b"x" * 100 + b'"}'

    async def exact(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if content_length:
            response.content_length = len(body)
        await response.prepare(request)
        await response.write(body)
        return response

    async with serve(("/c.json", exact)) as server:
        async with aclosing(Http(server.make_url("/c.json"), max_bytes=len(body))) as source:
            assert (await load_payload(source)).data == {"a": "x" * 100}


# ---------------------------------------------------------------- headers, proxy, session


async def test_headers_are_sent() -> None:
    doc = Doc()
    async with serve(("/c.json", doc)) as server:
        url = server.make_url("/c.json").with_user("bob").with_password(SECRET)
        async with aclosing(Http(url, headers={"X-Api-Key": "key", "x-trace": "1"})) as source:
            await load_payload(source)
    sent = doc.requests[0]
    assert sent["X-Api-Key"] == "key" and sent["X-Trace"] == "1"
    assert sent["Authorization"] == "Basic " + base64.b64encode(f"bob:{SECRET}".encode()).decode()
    assert sent["Accept"].startswith("application/json, application/yaml, application/toml")
    assert sent["User-Agent"].startswith("aioconfig/")


async def test_an_authorization_header_wins_over_url_userinfo() -> None:
    doc = Doc()
    async with serve(("/c.json", doc)) as server:
        url = server.make_url("/c.json").with_user("bob").with_password("pw")
        async with aclosing(Http(url, headers={"authorization": "Bearer t"})) as source:
            await load_payload(source)
    assert doc.requests[0].getall("Authorization") == ["Bearer t"]


@asynccontextmanager
async def forward_proxy() -> AsyncIterator[tuple[TestServer, list[CIMultiDict[str]]]]:
    """A plain-HTTP forward proxy: takes absolute-form targets (``GET http://host/path``) only.

    Anything else gets a 400, so a request that went straight to the origin cannot pass for
    one that went through the proxy.
    """
    seen: list[CIMultiDict[str]] = []
    hop_by_hop = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "host"}
    async with aiohttp.ClientSession() as upstream:

        async def relay(request: web.Request) -> web.Response:
            seen.append(request.headers.copy())
            if not request.raw_path.startswith("http://"):
                return web.Response(status=400, text="not a proxy request")
            headers = CIMultiDict(
                (k, v) for k, v in request.headers.items() if k.lower() not in hop_by_hop
            )
            async with upstream.get(
                request.raw_path, headers=headers, allow_redirects=False
            ) as answer:
                body = await answer.read()
                kept = ("Content-Type", "ETag", "Last-Modified", "Location")
                out = {k: answer.headers[k] for k in kept if k in answer.headers}
                return web.Response(status=answer.status, body=body, headers=out)

        async with serve(("/{tail:.*}", relay)) as proxy:
            yield proxy, seen


async def test_proxy_is_used() -> None:
    doc = Doc(etag='"1"')
    async with forward_proxy() as (proxy, seen), serve(("/c.json", doc)) as origin:
        proxy_url = proxy.make_url("/").with_user("pu").with_password(SECRET)
        async with aclosing(
            Http(origin.make_url("/c.json"), proxy=proxy_url, headers={"X-Api-Key": "k"})
        ) as source:
            first = await load_payload(source)
            second = await source.load(first.token)
    assert first.data == {"a": 1} and isinstance(second, NotModified)
    assert len(seen) == 2 and len(doc.requests) == 2  # both went through the proxy
    expected = "Basic " + base64.b64encode(f"pu:{SECRET}".encode()).decode()
    assert seen[0]["Proxy-Authorization"] == expected
    assert "Proxy-Authorization" not in doc.requests[0]
    assert doc.requests[0]["X-Api-Key"] == "k"
    assert doc.requests[1]["If-None-Match"] == '"1"'


async def test_an_unreachable_proxy() -> None:
    async with aclosing(
        Http("http://127.0.0.1:1/c.json", proxy=f"http://pu:{SECRET}@127.0.0.1:{free_port()}")
    ) as source:
        error = await load_error(source)
    assert type(error) is SourceUnavailable and error.transient
    assert str(error) == "http://127.0.0.1:1/c.json: cannot reach the proxy: connection refused"


async def test_a_given_session_is_used_and_left_open() -> None:
    doc = Doc()
    async with serve(("/c.json", doc)) as server, aiohttp.ClientSession() as session:
        source = Http(server.make_url("/c.json"), session=session)
        await load_payload(source)
        await source.aclose()
        assert not session.closed
        async with session.get(server.make_url("/c.json")) as response:
            assert response.status == 200
        assert "aioconfig" not in doc.requests[0].get("User-Agent", "")  # the session's own


async def test_a_closed_given_session() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    source = Http("http://127.0.0.1:1/c.json", session=session)
    error = await load_error(source)
    assert str(error) == "http://127.0.0.1:1/c.json: the session passed as session= is closed"


async def test_own_session_is_reused_then_closed() -> None:
    doc = Doc()
    async with serve(("/c.json", doc)) as server:
        source = Http(server.make_url("/c.json"))
        for _ in range(3):
            await load_payload(source)
        assert open_connections(server) == 1  # keep-alive: one connection for all three
        await source.aclose()
        await wait_until(lambda: open_connections(server) == 0)


# ---------------------------------------------------------------- secrets


async def test_credentials_never_show(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_headers = {
        "Authorization": f"Bearer {SECRET}",
        "Proxy-Authorization": f"Basic {SECRET}",
        "Cookie": f"session={SECRET}",
        "X-Api-Key": SECRET,
        "X-Custom": SECRET,
    }
    good = {"content_type": "application/json", "body": b'{"a": 1}'}
    failing = {"status": 500, "text": SECRET}
    answers: dict[str, dict[str, Any]] = {
        "/ok.json": good,
        "/401": {"status": 401, "reason": SECRET},
        "/500": failing,
        "/bad.json": {"body": b'{"a": "' + SECRET.encode(), "content_type": "application/json"},
        "/html": {"text": SECRET, "content_type": "text/html"},
        "/big.json": {"body": b"x" * 100, "content_type": "application/json"},
    }

    async def handler(request: web.Request) -> web.Response:
        return web.Response(**answers[request.path])

    errors: list[BaseException] = []
    async with serve(("/{tail:.*}", handler)) as server:

        def url(path: str) -> str:
            return f"http://bob:{SECRET}@127.0.0.1:{server.port}{path}?token={SECRET}&{SECRET}"

        sources = [Http(url(path), headers=secret_headers, max_bytes=50) for path in answers]
        sources.append(Http(f"http://bob:{SECRET}@127.0.0.1:{free_port()}/?k={SECRET}"))
        sources.append(Http(url("/ok.json"), proxy=f"http://p:{SECRET}@127.0.0.1:{free_port()}"))
        for source in sources:
            assert SECRET not in source.name and SECRET not in repr(source)
            try:
                await source.load(None)
            except SourceError as exc:
                errors.append(exc)
            finally:
                await source.aclose()
        # and through a Config, whose engine logs the errors
        source = Http(url("/500"), headers=secret_headers)
        with pytest.raises(InitialLoadError) as caught:
            await load(source, max_init_wait=0.05)
        errors.append(caught.value)
        answers["/500"] = good
        async with load(Http(url("/500"), headers=secret_headers), mode="manual") as config:
            answers["/500"] = failing
            result = await config.refresh(force=True)
            assert result.error is not None
            errors.append(result.error)
    assert len(errors) == 9
    for error in errors:
        shown = "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)
        assert SECRET not in shown
    assert caplog.records  # the engine did log
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


# ---------------------------------------------------------------- through a Config


async def test_end_to_end_with_manual_refresh(parses: list[str]) -> None:
    doc = Doc(b'{"db": {"host": "a", "port": 1}}', etag='"1"')
    async with serve(("/app.json", doc)) as server:
        async with load(Http(server.make_url("/app.json")), mode="manual") as config:
            assert config["db.port"] == 1
            result = await config.refresh(force=True)
            assert not result.changed and result.error is None
            assert doc.answers == [200, 304] and len(parses) == 1

            doc.body, doc.etag = b'{"db": {"host": "a", "port": 2}}', '"2"'
            result = await config.refresh(force=True)
            assert result.changed and result.keys == {"db.port"}
            assert config["db.port"] == 2 and config.version == 2

            doc.status = 503
            result = await config.refresh(force=True)
            assert isinstance(result.error, SourceUnavailable)
            assert str(result.error) == f"{config.sources[0].name}: HTTP 503 Service Unavailable"
            assert config["db.port"] == 2  # the last good snapshot keeps serving
            assert config.snapshot.sources == (config.sources[0].name,)
        await wait_until(lambda: open_connections(server) == 0)


async def test_an_optional_missing_document_counts_as_empty() -> None:
    doc = Doc()
    doc.status = 404
    async with serve(("/c.json", doc)) as server:
        async with load(Http(server.make_url("/c.json"), optional=True), mode="manual") as config:
            assert dict(config) == {}
            assert not (await config.refresh(force=True)).changed
            doc.status = 200  # it appears
            result = await config.refresh(force=True)
            assert result.changed and config["a"] == 1
    assert doc.answers == [404, 404, 200]
    assert "If-None-Match" not in doc.requests[2]


async def test_a_missing_document_fails_load_fast() -> None:
    doc = Doc()
    doc.status = 404
    async with serve(("/c.json", doc)) as server:
        with anyio.fail_after(2), pytest.raises(InitialLoadError) as caught:
            await load(Http(server.make_url("/c.json")), max_init_wait=60)
    assert len(doc.requests) == 1
    assert str(caught.value).endswith("/c.json: HTTP 404 Not Found")


@pytest.mark.slow
async def test_load_retries_a_transient_failure_until_it_heals() -> None:
    doc = Doc()
    doc.status = 503

    async def heal() -> None:
        await anyio.sleep(0.3)
        doc.status = 200

    async with serve(("/c.json", doc)) as server, anyio.create_task_group() as tg:
        tg.start_soon(heal)
        with anyio.fail_after(5):
            async with load(Http(server.make_url("/c.json")), max_init_wait=5) as config:
                assert config["a"] == 1
    assert doc.answers[0] == 503 and doc.answers[-1] == 200
