"""The fault suite for Http: a real loopback server misbehaving under a running Config.

For each fault: the last good snapshot keeps serving; each failed refresh is reported exactly
once (``on_refresh_error`` and one error event per subscriber), however many readers read and
call ``refresh()`` meanwhile; the backoff stays within full-jitter bounds up to its cap; the
Config recovers within one interval after the server heals; and no task or connection is left.

Time is a FakeClock, but the network is real: after moving the clock, a test polls (with short
real sleeps, bounded by ``fail_after``) until the refresh it started has been reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from http_helpers import open_connections, wait_until

from aioconfig import ChangeEvent, Config, ParseError, SourceError, SourceUnavailable, load
from aioconfig.sources._http import Http
from aioconfig.testing import FakeClock

pytestmark = pytest.mark.anyio

INTERVAL = 8.0  # the backoff cap: reached after four failures in a row (1, 2, 4, 8)
FAILURES = 5
READERS = 50
TIMEOUT = 1.0  # generous: a loaded CI machine must gather 50 readers inside one request
MAX_BYTES = 64 * 1024


class FaultServer:
    """Serves ``{"value": N}`` at /config.json, or fails the way ``mode`` says.

    ``"flap"`` alternates, starting with a failure: 503, good, 503, good...
    """

    def __init__(self) -> None:
        self.mode = "good"
        self.value = 1
        self.requests = 0
        self.flaps = 0
        self.release = anyio.Event()  # ends "slow" answers when the test is over
        #: Awaited as each request arrives, before the answer: readers come in meanwhile.
        self.on_request: Callable[[], Awaitable[None]] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.on_request is not None:
            await self.on_request()
        mode = self.mode
        if mode == "flap":
            self.flaps += 1
            mode = "503" if self.flaps % 2 else "good"
        if mode == "good":
            return web.json_response({"value": self.value})
        if mode in ("500", "503"):
            return web.Response(status=int(mode), text="down")
        if mode == "slow":
            with anyio.move_on_after(5):
                await self.release.wait()
            return web.json_response({"value": self.value})
        if mode == "truncated":
            return web.Response(body=b'{"value": 2, "pad', content_type="application/json")
        if mode == "wrong-type":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if mode == "reset":
            response.content_length = 1000
            await response.prepare(request)
            await response.write(b'{"value": 2, "pad": "' + b"x" * 100)
            assert request.transport is not None
            request.transport.abort()
            return response
        assert mode == "oversized", mode
        await response.prepare(request)  # chunked, no Content-Length: it never stops
        try:
            while True:
                await response.write(b" " * 65536)
        except (ConnectionError, aiohttp.ClientConnectionError):
            return response


@asynccontextmanager
async def serving(faults: FaultServer) -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get("/config.json", faults.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        yield server
    finally:
        faults.release.set()
        await server.close()


def task_names() -> list[str]:
    return sorted(task.get_name() for task in asyncio.all_tasks())


class Harness:
    """A Config in "auto" mode on a FakeClock, with subscribers and readers around it."""

    def __init__(self, config: Config, clock: FakeClock, reported: list[Exception]) -> None:
        self.config = config
        self.clock = clock
        self.reported = reported
        self.error_events = [0, 0, 0]
        self.change_events = [0, 0, 0]
        self.reads: list[Any] = []
        self.joined = 0  # readers whose refresh() came back with the failed refresh's error
        self._readers: anyio.abc.TaskGroup | None = None
        self._arrived = 0
        self._all_arrived = anyio.Event()

    async def subscribe(self, i: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with self.config.changes() as events:
            task_status.started()
            async for event in events:
                self.count(i, event)

    def count(self, i: int, event: ChangeEvent) -> None:
        if event.error is None:
            self.change_events[i] += 1
        else:
            self.error_events[i] += 1

    async def read(self) -> None:
        """What a request handler does: read a few times, then ask for a refresh if one is due."""
        for _ in range(10):
            self.reads.append(self.config["value"])
            await anyio.lowlevel.checkpoint()
        self._arrived += 1
        if self._arrived == READERS:
            self._all_arrived.set()
        result = await self.config.refresh()  # not forced: joins the flight in progress
        self.joined += result.error is not None
        assert result.snapshot is not None
        self.reads.append(result.snapshot["value"])

    async def readers_come_in(self) -> None:
        """The server's ``on_request``: hold the answer until READERS readers are waiting on it."""
        if self._readers is None:
            return  # not a poll of ours
        self._arrived = 0
        self._all_arrived = anyio.Event()
        for _ in range(READERS):
            self._readers.start_soon(self.read)
        with anyio.fail_after(5):
            await self._all_arrived.wait()

    async def poll(self) -> float:
        """Move the clock to the poll loop's next wake-up, with readers reading meanwhile.

        Returns how far the clock moved. Waits until that one refresh has been reported and
        the poll loop sleeps again.
        """
        config, clock = self.config, self.clock
        before = config.statistics()
        sleeps = len(clock.sleeps)
        delay = clock.sleeps[-1]
        async with anyio.create_task_group() as tg:
            self._readers = tg
            await clock.advance(delay)
            await wait_until(
                lambda: (
                    config.statistics().refreshes > before.refreshes
                    and len(clock.sleeps) > sleeps
                    and clock.sleepers == 1
                )
            )
            self._readers = None
        after = config.statistics()
        assert after.refreshes == before.refreshes + 1
        assert after.fetches == before.fetches + 1  # the readers caused no fetch of their own
        return delay


@asynccontextmanager
async def running(faults: FaultServer) -> AsyncIterator[tuple[Harness, TestServer]]:
    """The server, a Config on it, three subscribers; then checks that nothing is left over."""
    tasks_before = task_names()
    async with serving(faults) as server:
        clock = FakeClock()
        reported: list[Exception] = []
        source = Http(server.make_url("/config.json"), timeout=TIMEOUT, max_bytes=MAX_BYTES)
        async with load(
            source,
            refresh_interval=INTERVAL,
            clock=clock,
            seed=1234,
            on_refresh_error=reported.append,
        ) as config:
            harness = Harness(config, clock, reported)
            faults.on_request = harness.readers_come_in
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    await tg.start(harness.subscribe, i)
                await wait_until(lambda: clock.sleepers == 1)  # the poll loop is waiting
                yield harness, server
                tg.cancel_scope.cancel()
        await wait_until(lambda: open_connections(server) == 0)
    await wait_until(lambda: task_names() == tasks_before)


# fault -> (the error class, what its message says after the source's name)
FAULTS = {
    "500": (SourceUnavailable, ": HTTP 500 Internal Server Error"),
    "503": (SourceUnavailable, ": HTTP 503 Service Unavailable"),
    "slow": (SourceUnavailable, f": timed out after {TIMEOUT:g}s"),
    "reset": (SourceUnavailable, ": connection lost mid-body"),
    "truncated": (ParseError, ":1:18: unexpected end of data"),
    "wrong-type": (ParseError, ": expected a configuration document, got content type 'text/html'"),
    "oversized": (SourceError, f": response body exceeds max_bytes={MAX_BYTES}"),
}


# Over 0.25 s: real timeouts, or connections whose teardown keeps a task busy for a moment,
# which makes FakeClock.advance's wait_all_tasks_blocked() nap 0.1 s per poll.
SLOW = {"slow", "reset", "oversized"}


@pytest.mark.parametrize(
    "fault", [pytest.param(f, marks=[pytest.mark.slow] if f in SLOW else []) for f in FAULTS]
)
async def test_a_fault_keeps_the_last_good_config_and_heals(fault: str) -> None:
    kind, problem = FAULTS[fault]
    faults = FaultServer()
    async with running(faults) as (harness, server):
        config, clock = harness.config, harness.clock
        name = config.sources[0].name
        assert config["value"] == 1 and config.version == 1

        faults.mode = fault
        delays: list[float] = []
        for n in range(1, FAILURES + 1):
            await harness.poll()
            # reported once, the same error everywhere: the same failure again is not news
            assert len(harness.reported) == 1
            error = harness.reported[-1]
            assert type(error) is kind and str(error) == name + problem
            assert config.statistics().errors == 1
            assert config.statistics().consecutive_failures == n
            # the last good snapshot keeps serving
            assert config["value"] == 1 and config.version == 1
            # full-jitter backoff, capped at the interval
            delay = clock.sleeps[-1]
            assert 0 <= delay <= min(INTERVAL, 2 ** (n - 1)), (n, delay)
            delays.append(delay)
            # at most the one keep-alive connection stays open
            await wait_until(lambda: open_connections(server) <= 1)
        assert len(set(delays)) == FAILURES  # jittered: no two waits alike
        assert set(harness.reads) == {1}
        assert harness.joined == READERS * FAILURES  # every reader got its flight's error
        await wait_until(lambda: harness.error_events == [1] * 3)
        assert harness.change_events == [0, 0, 0]

        faults.mode, faults.value = "good", 2
        healed_at = clock.now()
        await harness.poll()
        assert config["value"] == 2 and config.version == 2
        assert clock.now() - healed_at <= INTERVAL  # back within one interval
        assert config.statistics().consecutive_failures == 0
        assert INTERVAL * 0.9 <= clock.sleeps[-1] <= INTERVAL * 1.1  # the normal poll again
        await wait_until(lambda: harness.change_events == [1, 1, 1])
        assert len(harness.reported) == 1 and harness.error_events == [1] * 3


async def test_a_flapping_server() -> None:
    faults = FaultServer()
    async with running(faults) as (harness, _):
        config, clock = harness.config, harness.clock
        faults.mode, faults.value = "flap", 2
        requests = faults.requests
        for round in range(1, 5):
            await harness.poll()  # 503
            assert len(harness.reported) == round
            assert config.statistics().consecutive_failures == 1  # reset by every success
            assert 0 <= clock.sleeps[-1] <= 1.0
            assert config["value"] == (1 if round == 1 else 2)
            await harness.poll()  # good
            assert config["value"] == 2
            assert config.statistics().consecutive_failures == 0
            assert INTERVAL * 0.9 <= clock.sleeps[-1] <= INTERVAL * 1.1
        assert faults.requests - requests == 8
        await wait_until(lambda: harness.error_events == [4, 4, 4])
        assert harness.change_events == [1, 1, 1]  # the good answers after the first: unchanged
        assert config.version == 2
        assert set(harness.reads) <= {1, 2}


async def test_closing_during_a_hanging_request_leaks_nothing() -> None:
    """Shutdown cancels a request stuck on a silent server; ``running`` checks what is left."""
    faults = FaultServer()
    async with running(faults) as (harness, _):
        faults.mode = "slow"
        await harness.clock.advance(harness.clock.sleeps[-1])
        await wait_until(lambda: faults.requests == 2)  # the poll's request hangs
        assert harness.reported == []
