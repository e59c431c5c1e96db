"""Time, behind a seam: the engine asks a Clock, so tests can drive time without sleeping."""

from __future__ import annotations

from typing import Protocol

import anyio


class Clock(Protocol):
    """What the refresh engine needs of time: a monotonic reading and a way to wait."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a cancellation point)."""
        ...


class SystemClock:
    """The event loop's own clock."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
