"""Change events and their fan-out to bounded, per-subscriber streams.

Publishing never blocks and never awaits: the refresh engine hands each event to every
subscriber's buffer and moves on. A subscriber that falls behind has its buffer **coalesced**:
when the buffer is full, a new change event is folded into the newest queued change event
(``old`` from the queued one, ``new`` and the union of ``keys`` from both), so a slow reader
skips intermediate versions but never misses that a key changed and always ends at the latest
snapshot. A new error event, when the buffer is full, replaces the oldest queued error event
(or, if none is queued, the two oldest change events are folded together to make room).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._snapshot import Snapshot

__all__ = ("ChangeEvent", "ChangeStream", "Hub", "key_matches")


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A swap from ``old`` to ``new``, or (when ``error`` is set) a refresh that failed.

    ``keys`` holds the dotted leaf keys added, removed or modified, and ``flags`` the
    feature-flag keys whose evaluation may have changed (a flag whose prerequisite changed is
    listed too); both are filtered by the subscription. For an error event both are empty and
    ``old is new`` is the snapshot that keeps serving.
    """

    old: Snapshot
    new: Snapshot
    keys: frozenset[str]
    error: Exception | None = field(default=None)
    flags: frozenset[str] = field(default=frozenset())

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<ChangeEvent error={self.error!r} version={self.new.version}>"
        flags = f" flags={sorted(self.flags)!r}" if self.flags else ""
        return (
            f"<ChangeEvent {self.old.version}->{self.new.version} "
            f"keys={sorted(self.keys)!r}{flags}>"
        )


def key_matches(key: str, prefixes: Iterable[str]) -> bool:
    """Whether ``key`` is, contains or lies under one of the dotted ``prefixes``."""
    for prefix in prefixes:
        if key == prefix or key.startswith(prefix + ".") or prefix.startswith(key + "."):
            return True
    return False


def _fold(first: ChangeEvent, second: ChangeEvent) -> ChangeEvent:
    return ChangeEvent(
        first.old, second.new, first.keys | second.keys, flags=first.flags | second.flags
    )


class ChangeStream:
    """The async iterator of one subscription; ends when the Config closes."""

    def __init__(self, hub: Hub, keys: tuple[str, ...] | None, max_buffer: int) -> None:
        self._hub = hub
        self._keys = keys
        self._max = max_buffer
        self._queue: deque[ChangeEvent] = deque()
        self._wakeup: anyio.Event | None = None
        self._closed = False
        #: How many times a full buffer made this stream fold or drop an event.
        self.coalesced = 0

    # -- producer side (the hub) --

    def _offer(self, event: ChangeEvent) -> None:
        if event.error is None and self._keys is not None:
            keys = frozenset(k for k in event.keys if key_matches(k, self._keys))
            flags = frozenset(k for k in event.flags if k in self._keys)
            if not keys and not flags:
                return
            event = ChangeEvent(event.old, event.new, keys, flags=flags)
        queue = self._queue
        if len(queue) >= self._max:
            self.coalesced += 1
            self._make_room(event)
        else:
            queue.append(event)
        if self._wakeup is not None:
            self._wakeup.set()

    def _make_room(self, event: ChangeEvent) -> None:
        queue = self._queue
        if event.error is None:
            for index in range(len(queue) - 1, -1, -1):
                if queue[index].error is None:
                    queued = queue[index]
                    del queue[index]
                    queue.append(_fold(queued, event))
                    return
            queue.popleft()  # only errors queued: the oldest goes
            queue.append(event)
            return
        for index, queued in enumerate(queue):
            if queued.error is not None:
                del queue[index]
                queue.append(event)
                return
        first = queue.popleft()
        second = queue.popleft()
        queue.appendleft(_fold(first, second))
        queue.append(event)

    def _close(self) -> None:
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()

    # -- consumer side --

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> ChangeEvent:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = anyio.Event()
            try:
                await self._wakeup.wait()
            finally:
                self._wakeup = None
        return self._queue.popleft()

    def pending(self) -> int:
        """Events queued and not yet read."""
        return len(self._queue)


class _Subscription:
    def __init__(self, hub: Hub, keys: tuple[str, ...] | None, max_buffer: int) -> None:
        self._stream = ChangeStream(hub, keys, max_buffer)

    async def __aenter__(self) -> ChangeStream:
        self._stream._hub._add(self._stream)
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stream._hub._discard(self._stream)
        self._stream._close()


class Hub:
    """Fans events out to every open stream."""

    def __init__(self) -> None:
        self._streams: list[ChangeStream] = []
        self._closed = False

    def subscribe(self, keys: Iterable[str] | None, max_buffer: int) -> _Subscription:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1, got {max_buffer!r}")
        if isinstance(keys, str):
            keys = (keys,)
        return _Subscription(self, None if keys is None else tuple(keys), max_buffer)

    def publish(self, event: ChangeEvent) -> None:
        for stream in self._streams:
            stream._offer(event)

    def close(self) -> None:
        self._closed = True
        for stream in self._streams:
            stream._close()
        self._streams.clear()

    def __len__(self) -> int:
        return len(self._streams)

    def _add(self, stream: ChangeStream) -> None:
        if self._closed:
            stream._close()
            return
        self._streams.append(stream)

    def _discard(self, stream: ChangeStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
