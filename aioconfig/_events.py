"""Change events and their fan-out to bounded, per-subscriber streams.

Publishing never blocks and never awaits: the engine's notifier hands each event to every
subscriber's buffer, in version order, and moves on. A subscriber that falls behind has its
buffer **coalesced** when it is full, and events are always read in the order they happened:

* a new error event makes the oldest queued error event go;
* a new change event folds the newest two change events that stand side by side into one
  (``old`` of the first, ``new`` of the second, the union of ``keys`` and ``flags``), so a slow
  reader skips intermediate versions but never misses that a key changed and always ends at
  the latest snapshot. ``event.old.version`` and ``event.new.version`` say which versions a
  folded event spans (``event.versions``);
* failing that (errors and changes alternate), the oldest error event goes: every error also
  reaches ``on_refresh_error`` and ``statistics()``, while a change is never lost.

Any ``max_buffer >= 1`` works; with 1, a reader sees the latest change (folded) or, if nothing
changed since it last read, the latest error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from ._layers import key_matches

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

    @property
    def versions(self) -> range:
        """The versions this event brought in (more than one when folded; none for an error)."""
        return range(self.old.version + 1, self.new.version + 1)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<ChangeEvent error={self.error!r} version={self.new.version}>"
        flags = f" flags={sorted(self.flags)!r}" if self.flags else ""
        return (
            f"<ChangeEvent {self.old.version}->{self.new.version} "
            f"keys={sorted(self.keys)!r}{flags}>"
        )


def _fold(first: ChangeEvent, second: ChangeEvent) -> ChangeEvent:
    return ChangeEvent(
        first.old, second.new, first.keys | second.keys, flags=first.flags | second.flags
    )


def _make_room(queue: deque[ChangeEvent]) -> None:
    """Shorten ``queue`` by one, keeping read order (see the module docstring).

    The event just added is the last one: a new error makes an older error go; a new change
    folds the newest two changes that stand side by side. Failing that, an error goes.
    """
    errors = [index for index, queued in enumerate(queue) if queued.error is not None]
    if queue[-1].error is not None and len(errors) > 1:
        del queue[errors[0]]
        return
    for index in range(len(queue) - 1, 0, -1):
        first, second = queue[index - 1], queue[index]
        if first.error is None and second.error is None:
            queue[index - 1] = _fold(first, second)
            del queue[index]
            return
    del queue[errors[0]]


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
        queue.append(event)
        if len(queue) > self._max:
            self.coalesced += 1
            _make_room(queue)
        if self._wakeup is not None:
            self._wakeup.set()

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
