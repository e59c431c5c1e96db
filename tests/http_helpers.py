"""Helpers shared by the tests that run real aiohttp servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def open_connections(server: TestServer) -> int:
    """How many client connections the server holds open right now."""
    assert server.runner is not None and server.runner.server is not None
    return len(server.runner.server.connections)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` with short real sleeps: the other end of a socket is not a task."""
    with anyio.fail_after(5):
        while True:
            if condition():
                return
            await anyio.sleep(0.002)


@asynccontextmanager
async def serve(*routes: tuple[str, Handler]) -> AsyncIterator[TestServer]:
    """A real server on a free loopback port, closed on exit. No access log: it quotes URLs."""
    app = web.Application()
    for path, handler in routes:
        app.router.add_route("GET", path, _coroutine(handler))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        yield server
    finally:
        await server.close()


def _coroutine(handler: Handler) -> Handler:
    """aiohttp wants a coroutine function, not an object with an async ``__call__``."""

    async def call(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return call
