"""Helpers shared by the tests that run real aiohttp servers on loopback."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from aiohttp.test_utils import TestServer


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
