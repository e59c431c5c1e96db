"""A test kit for code that uses aioconfig: a fake clock and a source you control.

```python
clock = FakeClock()
source = MutableSource({"feature": {"enabled": False}})
async with load(source, clock=clock, refresh_interval=30) as config:
    source.set({"feature": {"enabled": True}})
    await clock.advance(31)            # the poll loop wakes and refreshes
    assert config["feature.enabled"] is True
```
"""

from __future__ import annotations

import copy
import heapq
import itertools
from collections.abc import Hashable, Mapping
from typing import Any

import anyio
import anyio.lowlevel

from .flags._model import parse_flags
from .sources._base import Emit, NotModified, Payload, Source

__all__ = ("FakeClock", "MutableSource")


class FakeClock:
    """A clock that moves only when told to, so timing logic is tested without waiting."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        #: Every delay passed to :meth:`sleep`, in order (handy to check jitter and backoff).
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + max(seconds, 0.0), next(self._order), event))
        await event.wait()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose time has come, in order.

        Between wake-ups it lets every task run until all are blocked again, so the effects of
        each wake-up (a refresh, a new sleep) happen before the next one.
        """
        target = self._now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, event = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            event.set()
            await _settle()
        self._now = target
        await _settle()

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return len(self._sleepers)


async def _settle() -> None:
    # Let woken tasks run a few steps first: anyio's wait_all_tasks_blocked() naps 0.1 s
    # whenever it finds a task that is ready to run, which would make every advance slow.
    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()


class MutableSource(Source):
    """A source whose data, failures and push behaviour the test controls.

    ``set(data)`` changes what the next load returns (and, with ``push=True``, pushes it);
    ``set_flags(document)`` does the same for feature flags (a ConfigCat ``config_v6``
    document, or None for none), standing in for a remote flag source such as ``ConfigCat``;
    ``fail(error)`` makes loads raise until ``fail(None)``; ``loads`` counts loads;
    ``gate`` (an ``anyio.Event``) makes loads wait until it is set.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        name: str = "mutable",
        push: bool = False,
        optional: bool = False,
        flags: Mapping[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._data: dict[str, Any] = copy.deepcopy(dict(data or {}))
        self._flags = None if flags is None else parse_flags(copy.deepcopy(flags), source=name)
        self._version = 1
        self._error: Exception | None = None
        self._push = push
        self._pushed: anyio.Event | None = None
        self.optional = optional
        self.loads = 0
        self.closed = False
        self.gate: anyio.Event | None = None

    @property
    def name(self) -> str:
        return self._name

    def set(self, data: Mapping[str, Any]) -> None:
        """Replace the data; the next load (or the watch, with ``push=True``) sees it."""
        self._data = copy.deepcopy(dict(data))
        self._version += 1
        if self._pushed is not None:
            self._pushed.set()

    def set_flags(self, document: Mapping[str, Any] | None) -> None:
        """Replace the flags (parsed here: a malformed document raises ``ParseError`` now)."""
        parsed = (
            None if document is None else parse_flags(copy.deepcopy(document), source=self._name)
        )
        self._flags = parsed
        self._version += 1
        if self._pushed is not None:
            self._pushed.set()

    def fail(self, error: Exception | None) -> None:
        """Make every load raise ``error`` (``None`` heals the source)."""
        self._error = error

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        self.loads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self._error is not None:
            raise self._error
        if token == self._version:
            return NotModified(token, self._version)
        return Payload(
            copy.deepcopy(self._data), self._version, flags=self._flags, order=self._version
        )

    @property
    def can_watch(self) -> bool:
        return self._push

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        while True:
            if token != self._version:
                if self._error is not None:
                    raise self._error
                token = self._version
                data = copy.deepcopy(self._data)
                await emit(Payload(data, token, flags=self._flags, order=token))
            self._pushed = anyio.Event()
            await self._pushed.wait()

    async def aclose(self) -> None:
        self.closed = True
