"""``Retry-After`` (issue 10): a server that asks for a pause gets it, at start-up, in the
background, and when the Config starts from a cache.

Real servers on 127.0.0.1 speak plain HTTP and ConfigCat's CDN protocol; each records when it
was asked, on the Config's fake clock, so "not before" is checked without waiting. Only the
start-up (bounded by ``max_init_wait``, real time) and ConfigCat's own pause (real time: a
source has no engine clock) need a real second.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from http_helpers import wait_until

from aioconfig import Config, FileCache, InitialLoadError, SourceUnavailable, load
from aioconfig.sources import ConfigCat, Http, NotModified, Payload, Source
from aioconfig.sources._base import Emit
from aioconfig.testing import FakeClock

pytestmark = pytest.mark.anyio

KEY = "configcat-sdk-1/retry-after-0123456789/retry-after-abcdefghij"
DOCUMENT = {"f": {"where": {"t": 1, "v": {"s": "server"}}}}


@dataclass
class Failure:
    """One answer to give instead of the document: a status and its ``Retry-After``, in
    seconds, or as the HTTP date ``date_in`` seconds after the request."""

    status: int
    retry_after: str | None = None
    date_in: int | None = None

    def headers(self) -> dict[str, str]:
        if self.date_in is not None:
            return {"Retry-After": http_date(self.date_in)}
        return {} if self.retry_after is None else {"Retry-After": self.retry_after}


class Server:
    """Serves a JSON document (the Http source's settings, or a ConfigCat ``config_v6.json``
    with an ETag and 304s), or the failures queued in ``failing``; records each request's time
    on ``clock`` (a fake clock, when the Config has one) and on the monotonic clock."""

    def __init__(self, document: dict[str, Any], clock: FakeClock | None = None) -> None:
        self.document = document
        self.clock = clock
        self.failing: list[Failure] = []  # answered once each, in turn
        self.down: Failure | None = None  # then this one, for good
        self.times: list[float] = []  # clock.now() at each request
        self.real: list[float] = []  # time.monotonic() at each request
        self.paths: list[str] = []

    @property
    def requests(self) -> int:
        return len(self.times)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.times.append(self.clock.now() if self.clock is not None else 0.0)
        self.real.append(time.monotonic())
        self.paths.append(request.path)
        failure = self.failing.pop(0) if self.failing else self.down
        if failure is not None:
            return web.Response(status=failure.status, headers=failure.headers())
        body = json.dumps(self.document).encode()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": "application/json"})


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    """``server`` on a free loopback port; yields its base URL. No access log (it quotes
    the SDK key)."""
    app = web.Application()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await server.handle(request)

    app.router.add_get("/{path:.*}", handle)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(access_log=None)
    try:
        yield str(test_server.make_url("/")).rstrip("/")
    finally:
        await test_server.close()


def http(base: str) -> Http:
    return Http(base + "/app.json")


def configcat(base: str, **options: Any) -> ConfigCat:
    return ConfigCat(KEY, base_url=base, **options)


KINDS: dict[str, tuple[dict[str, Any], Callable[[str], Source]]] = {
    "http": ({"a": 1}, http),
    "configcat": (DOCUMENT, configcat),
}


def served(config: Config, kind: str) -> object:
    """What the Config serves from the document: Http's setting ``a``, ConfigCat's flag."""
    return config["a"] if kind == "http" else config.get_value("where", "")


def http_date(seconds_from_now: int) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


async def fetches_at(clock: FakeClock, config: Config, when: float) -> int:
    """Move the fake clock to ``when``; the fetches the Config began up to then. The
    advance returns once every task is blocked, so a fetch due by then has begun."""
    await clock.advance(when - clock.now())
    return config.statistics().fetches


# ---------------------------------------------------------------- in the background


@pytest.mark.parametrize("kind", ["http", "configcat"])
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "date", "capped"])
async def test_the_background_waits_as_long_as_the_server_asks(
    kind: str, status: int, form: str
) -> None:
    document, make = KINDS[kind]
    failure = {
        "seconds": Failure(status, "120"),
        "date": Failure(status, date_in=120),
        "capped": Failure(status, "100000"),
    }[form]
    clock = FakeClock()
    server = Server(document, clock)
    errors: list[Exception] = []
    async with (
        serving(server) as base,
        load(
            make(base), refresh_interval=30, jitter=0, clock=clock, on_refresh_error=errors.append
        ) as config,
    ):
        server.down = failure
        fetched = await fetches_at(clock, config, 30)
        await wait_until(lambda: bool(errors))
        (error,) = errors
        assert isinstance(error, SourceUnavailable) and error.transient
        wait = error.retry_after
        assert wait is not None
        if form == "seconds":
            assert wait == 120
        elif form == "date":  # a date has whole seconds
            assert 110 < wait <= 120
        else:
            assert wait == 300  # MAX_RETRY_AFTER
        assert str(error).endswith(f"(Retry-After: {wait:g}s)")
        assert str(error).startswith("configcat:****" if kind == "configcat" else "http://")
        assert server.times == [0.0, 30.0]  # the start, then the failed poll

        # The backoff alone would retry within the interval (30 s): nothing until 30 + wait.
        assert await fetches_at(clock, config, 30 + wait - 0.5) == fetched
        server.down = None
        assert await fetches_at(clock, config, 30 + wait + 0.5) == fetched + 1
        await wait_until(lambda: server.requests == 3)
        assert server.times[2] >= 30 + wait
        await wait_until(lambda: config.statistics().consecutive_failures == 0)


async def test_a_plain_refresh_waits_and_a_forced_one_still_asks() -> None:
    clock = FakeClock()
    server = Server({"a": 1}, clock)
    async with serving(server) as base, load(http(base), mode="lazy", clock=clock) as config:
        server.down = Failure(503, "120")
        assert (await config.refresh(force=True)).error is not None
        await clock.advance(60)  # past the interval, not past the pause
        assert (await config.refresh()).error is None  # not due: no request
        assert server.requests == 2
        server.down = None
        assert (await config.refresh(force=True)).error is None
        assert server.requests == 3


# ---------------------------------------------------------------- started from the cache


@pytest.mark.parametrize("kind", ["http", "configcat"])
async def test_started_from_the_cache_the_first_retry_waits_as_long_as_the_server_asks(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document, make = KINDS[kind]
    cache = FileCache(tmp_path / "cache.json")
    server = Server(document)
    async with serving(server) as base:
        async with load(make(base), cache=cache, mode="manual"):
            pass  # the cache is written

        clock = FakeClock()
        server.clock = clock
        server.down = Failure(503, "120")
        begun = time.monotonic()
        caplog.set_level(logging.INFO, logger="aioconfig")
        async with load(
            make(base), cache=cache, clock=clock, refresh_interval=30, max_init_wait=20
        ) as config:
            # No attempt fits in max_init_wait: the start does not wait it out for nothing.
            assert time.monotonic() - begun < 10
            assert config.snapshot.from_cache
            assert server.requests == 2  # the first start, and one attempt of this one
            (line,) = [r.getMessage() for r in caplog.records if "start-up attempt" in r.msg]
            assert "(Retry-After: 120s); no attempt left: the next would be in 120.00s" in line

            # The first retry in the background waits the 120 s out (the backoff: < 30 s).
            assert await fetches_at(clock, config, 119.5) == 1
            server.down = None
            assert await fetches_at(clock, config, 120) == 2
            await wait_until(lambda: not config.snapshot.from_cache)
            assert served(config, kind) == ("server" if kind == "configcat" else 1)
        assert server.times[-1] == 120


@pytest.mark.slow
async def test_a_pause_that_fits_is_waited_at_start_up_and_the_last_one_counts_after(
    tmp_path: Path,
) -> None:
    cache = FileCache(tmp_path / "cache.json")
    server = Server({"a": 1})
    async with serving(server) as base:
        async with load(http(base), cache=cache, mode="manual"):
            pass
        clock = FakeClock()
        server.clock = clock
        server.failing = [Failure(503, "1"), Failure(429, "200")]
        async with load(
            http(base), cache=cache, clock=clock, refresh_interval=30, max_init_wait=20
        ) as config:
            assert config.snapshot.from_cache
            assert server.requests == 3
            assert server.real[2] - server.real[1] >= 0.99  # the first pause was waited
            # The background waits the second one out, from when it was asked.
            assert await fetches_at(clock, config, 199.5) == 2
            assert await fetches_at(clock, config, 200) == 3
            await wait_until(lambda: not config.snapshot.from_cache)


# ---------------------------------------------------------------- at start-up


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["http", "configcat"])
async def test_start_up_waits_a_pause_that_fits_and_says_so(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    document, make = KINDS[kind]
    server = Server(document)
    server.failing = [Failure(503, "1"), Failure(429, date_in=2)]
    caplog.set_level(logging.INFO, logger="aioconfig")
    async with serving(server) as base:
        async with load(make(base), max_init_wait=10, mode="manual") as config:
            assert served(config, kind) == ("server" if kind == "configcat" else 1)
    assert server.requests == 3
    first, second = server.real[1] - server.real[0], server.real[2] - server.real[1]
    assert first >= 0.99  # Retry-After: 1, not the start-up backoff (a quarter second)
    lines = [r.getMessage() for r in caplog.records if "start-up attempt" in r.msg]
    assert len(lines) == 2
    assert "(Retry-After: 1s); next attempt in 1.00s" in lines[0]
    # The date's wait as read (1 to 2 s: the date has whole seconds) is the one logged, and
    # the one waited.
    said = float(lines[1].split("; next attempt in ")[1].split("s,")[0])
    assert 0.5 <= said <= 2 and second >= said - 0.01


async def test_start_up_without_a_cache_fails_at_once_when_no_attempt_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server({"a": 1})
    server.down = Failure(503, "120")
    caplog.set_level(logging.INFO, logger="aioconfig")
    begun = time.monotonic()
    async with serving(server) as base:
        with pytest.raises(InitialLoadError) as info:
            await load(http(base), max_init_wait=20)
    assert time.monotonic() - begun < 10
    assert server.requests == 1
    assert info.value.retry_after == 120
    assert str(info.value).startswith("could not load the configuration within max_init_wait=20s")
    (line,) = [r.getMessage() for r in caplog.records if "start-up attempt" in r.msg]
    assert "; no attempt left: the next would be in 120.00s, " in line


# ---------------------------------------------------------------- ConfigCat's own cache


class MemoryCache:
    """A ConfigCat cache (``aioconfig.Cache``) in a dict."""

    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = store

    async def get(self, key: str) -> bytes | None:
        return self.store.get(key)

    async def set(self, key: str, value: bytes) -> None:
        self.store[key] = value


def stale_entry() -> dict[str, bytes]:
    """The SDK's cache entry for KEY: fetched a day ago, flag ``where`` = ``"cached"``."""
    key = hashlib.sha1(f"{KEY}_config_v6.json_v2".encode()).hexdigest()
    document = {"f": {"where": {"t": 1, "v": {"s": "cached"}}}}
    fetched = int((time.time() - 86400) * 1000)
    return {key: f'{fetched}\n"old"\n{json.dumps(document)}'.encode()}


async def test_configcat_serving_its_cache_keeps_the_pause_the_server_asked_for() -> None:
    """Its cache served, the start is a good load for the engine, which polls on its own
    schedule (with jitter, anywhere in the first interval): the source keeps the pause."""
    clock = FakeClock()
    server = Server(DOCUMENT, clock)
    server.down = Failure(503, "120")
    errors: list[Exception] = []
    async with serving(server) as base:
        source = configcat(base, cache=MemoryCache(stale_entry()))
        async with load(
            source, refresh_interval=30, jitter=0, clock=clock, on_refresh_error=errors.append
        ) as config:
            assert config.get_value("where", "") == "cached"
            fetched = await fetches_at(clock, config, 30)  # the first poll
            await wait_until(lambda: bool(errors))
            assert server.requests == 1  # no request: the pause runs
            (error,) = errors
            assert isinstance(error, SourceUnavailable)
            assert str(error) == f"{source.name}: HTTP 503 Service Unavailable (Retry-After: 120s)"
            assert error.retry_after is not None and 110 < error.retry_after <= 120
            # ... and the engine waits what is left of it.
            assert await fetches_at(clock, config, 30 + 110) == fetched
            assert server.requests == 1
            assert config.get_value("where", "") == "cached"


@pytest.mark.slow
async def test_configcat_asks_again_once_the_pause_is_over() -> None:
    clock = FakeClock()
    server = Server(DOCUMENT, clock)
    server.failing = [Failure(429, "1")]
    async with serving(server) as base:
        source = configcat(base, cache=MemoryCache(stale_entry()))
        async with load(source, refresh_interval=30, clock=clock) as config:
            assert config.get_value("where", "") == "cached"
            await anyio.sleep(1.05)  # the pause is real time: a source has no engine clock
            await clock.advance(30)
            await wait_until(lambda: config.get_value("where", "") == "server")
            assert server.requests == 2


# ---------------------------------------------------------------- a watch


class Watched(Source):
    """A source whose watch ends at once with a 429 asking for ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.watches = 0

    @property
    def name(self) -> str:
        return "watched"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        return Payload({"a": 1}, 1) if token is None else NotModified(token)

    @property
    def can_watch(self) -> bool:
        return True

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        self.watches += 1
        error = SourceUnavailable(self.name, "HTTP 429 Too Many Requests")
        error.retry_after = self.wait
        raise error


async def test_a_watch_is_reopened_no_sooner_than_the_server_asks() -> None:
    clock = FakeClock()
    source = Watched(120)
    async with load(source, refresh_interval=1000, clock=clock):
        await clock.advance(0)
        assert source.watches == 1
        await clock.advance(119.5)  # the backoff alone: under a second
        assert source.watches == 1
        await clock.advance(0.5)
        assert source.watches == 2
