"""Small helpers the tests share."""

from __future__ import annotations

from collections.abc import Callable

import anyio


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        for _ in range(int(seconds * 100) + 1):
            if condition():
                return
            await anyio.sleep(0.01)
    raise AssertionError("the condition never held")
