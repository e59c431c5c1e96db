"""Big work off the event loop: one rule for the engine's builds and its cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

__all__ = ("off_loop",)

_T = TypeVar("_T")


async def off_loop(big: bool, work: Callable[[], _T]) -> _T:
    """``work()``: in a worker thread when ``big``, so the loop runs meanwhile; right here
    otherwise (a thread hop costs some 60 us). Awaited, so the caller's order holds, and not
    abandoned if cancelled: the work ends before the caller does, and its result is dropped."""
    return await anyio.to_thread.run_sync(work) if big else work()
