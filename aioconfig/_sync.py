"""SyncConfig: a live Config for synchronous code, hosted on a thread of its own.

```
  caller threads                         host thread (daemon, one per process)
  ──────────────                         ─────────────────────────────────────
  config["db.port"]  ── reads ──▶ Config ◀── owns ── event loop: applier, notifier, polls,
  config.refresh()   ── submit ─────────────────────▶ Config.refresh()        watches, callbacks
  config.changes()   ── submit ─────────────────────▶ ChangeStream
  config.close()     ── stop, join ─────────────────▶ async with Config: ... (cancelled)
```

* **Reads** go straight to the hosted ``Config``: one reference, no loop, no lock.
* **Calls that wait** (``refresh``, the change iterator) submit a coroutine to the host's loop
  and block the calling thread on its future, with a timeout. On the host thread itself (a
  callback) they would wait for themselves, so they raise instead.
* **Fork.** ``os.register_at_fork`` restarts the host in the child at once: a new loop thread
  and a new ``Config`` over the same sources, so every worker refreshes by itself. Until its
  first load, the child serves the snapshot it inherited; if that load fails it is retried with
  backoff and logged, ``statistics()`` and ``status()`` say so (``"opening"``, then
  ``"failed"`` with the error), and a ``refresh()`` or ``changes()`` tries again at once
  instead of waiting out the backoff. The parent's loop, thread and Config are left untouched
  in the child (never closed, never collected), so nothing the parent owns is shut down from
  the child.
* **Exit.** ``close()`` stops the host and joins it for at most ``timeout`` seconds; it is
  registered with ``atexit``, and the thread is a daemon, so neither interpreter exit nor a
  SIGTERM that ends in ``sys.exit()`` can hang on it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from functools import partial
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio

from ._clock import SystemClock
from ._config import Config, ConfigStatistics, ConfigStatus
from ._engine import RefreshResult
from ._events import ChangeEvent, ChangeStream
from ._exceptions import ClosedError, InitialLoadError
from ._history import HistoryEntry
from ._load import load as _load
from ._schedule import backoff_delay
from ._snapshot import Snapshot
from .flags._details import EvaluationDetails
from .flags._model import FlagConfig
from .flags._user import User
from .sources._base import Source

__all__ = ("SyncChangeStream", "SyncConfig", "load")

logger = logging.getLogger("aioconfig")

_T = TypeVar("_T")
_M = TypeVar("_M")

#: Every open SyncConfig of this process, for the fork handler.
_live: weakref.WeakValueDictionary[int, SyncConfig] = weakref.WeakValueDictionary()
#: What a child inherited from its parent's hosts: kept, never closed nor collected, so that no
#: finalizer in the child touches the parent's loop, sockets or sessions.
_inherited: list[object] = []

DEFAULT_CLOSE_TIMEOUT = 5.0
#: A round trip to the host's running loop (subscribing): past it, the loop is blocked.
LOOP_ANSWER_TIMEOUT = 5.0


def load(*sources: Source | str | os.PathLike[str], **options: Any) -> SyncConfig:
    """Open a live configuration for synchronous code; return once the first load is good.

    Takes exactly the sources and options of :func:`aioconfig.load` (checked here, in the
    caller's thread). A thread of its own runs an event loop that owns the ``Config`` and
    keeps it fresh; callbacks (``on_change``, ...) run on that thread. Raises the same
    ``InitialLoadError`` when there is no first good configuration. Close it with
    ``config.close()`` or ``with aioconfig.sync.load(...) as config:``; it is also closed at
    interpreter exit.
    """
    config = SyncConfig(sources, options)
    config._start()
    return config


class _Host:
    """One event loop on one daemon thread, owning one Config at a time, in one process."""

    def __init__(
        self,
        make: Callable[[], Config],
        opened: Callable[[Config], None],
        *,
        inherited: Config | None = None,
    ) -> None:
        self.pid = os.getpid()
        self.make = make
        self.opened = opened
        # After a fork: the parent's Config, serving until this host's own opens. A failing
        # first load is then retried instead of given up.
        self.inherited = inherited
        self.rng = random.Random()
        self.config: Config | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()  # opened, or failed for good
        # Each first load that failed (a forked child's); waiters are told through ``outcome``.
        self.failures = 0
        self.last_error: InitialLoadError | None = None
        self.backing_off = False  # between a failed first load and the next attempt
        self.outcome = threading.Condition()
        self.backoff: anyio.CancelScope | None = None  # the wait before the next attempt
        self.loop = asyncio.new_event_loop()
        self.lock = threading.Lock()
        self.finished = False  # no more submissions: the loop is stopping
        self.stopping = False  # touched on the loop thread only
        self.scope: anyio.CancelScope | None = None
        self.thread = threading.Thread(target=self._main, name="aioconfig sync", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def on_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def _tell(self, error: InitialLoadError | None = None) -> None:
        """Ready (``error`` None) or one more failed first load: wake whoever waits on it."""
        with self.outcome:
            if error is None:
                self.ready.set()
            else:
                self.failures += 1
                self.last_error = error
                self.backing_off = True
            self.outcome.notify_all()

    # -- the host thread --

    def _main(self) -> None:
        loop = self.loop
        try:
            loop.run_until_complete(self._run())
        except BaseException as exc:  # kept for the opener, never lost
            self.error = exc
        finally:
            self._tell()
            with self.lock:
                self.finished = True
            try:
                loop.run_until_complete(asyncio.sleep(0))  # run what was submitted meanwhile
                _cancel_all(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _run(self) -> None:
        attempt = 0
        while not self.stopping:
            with self.outcome:
                self.backing_off = False
            config = self.make()
            self.config = config
            with anyio.CancelScope() as self.scope:
                try:
                    async with config:
                        self.opened(config)
                        self._tell()
                        await anyio.sleep_forever()
                except InitialLoadError as exc:
                    if self.inherited is None:
                        raise
                    attempt += 1
                    delay = backoff_delay(attempt, 1.0, 30.0, self.rng)
                    logger.warning(
                        "after a fork, process %d could not load its own configuration "
                        "(retrying in %.1fs; it serves the snapshot it inherited meanwhile): %s",
                        self.pid,
                        delay,
                        exc,
                    )
                    self._tell(exc)
                    with anyio.CancelScope() as self.backoff:  # retry_soon() cuts it short
                        await anyio.sleep(delay)
                    self.backoff = None
                    continue
            return

    def _stop_on_loop(self) -> None:
        self.stopping = True
        if self.scope is not None:
            self.scope.cancel()

    def _retry_on_loop(self) -> None:
        if self.backoff is not None:
            self.backoff.cancel()

    # -- any thread --

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        with self.lock:
            if self.finished:
                coroutine.close()
                raise ClosedError("this SyncConfig is closed")
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        with self.lock:
            if not self.finished:
                self.loop.call_soon_threadsafe(self._stop_on_loop)

    def retry_soon(self) -> None:
        """A forked child waiting out its backoff: try the first load again now."""
        with self.lock:
            if not self.finished:
                self.loop.call_soon_threadsafe(self._retry_on_loop)

    def wait_ready(self, deadline: float | None, *, force: bool) -> bool | None:
        """Wait until the Config is open (True), a forked child's first load fails (False),
        or ``deadline`` passes (None).

        Between attempts, ``force`` starts the next one at once and waits for it; without it
        the last failure is the answer, as a refresh that is not due answers at once.
        """
        if self.ready.is_set():
            return True
        with self.outcome:
            if self.backing_off and not force:
                return False
            seen = self.failures
            self.retry_soon()
            if not self.outcome.wait_for(
                lambda: self.ready.is_set() or self.failures > seen, _left(deadline)
            ):
                return None
        return self.ready.is_set()

    def now(self, config: Config) -> float:
        """``config``'s clock, read from any thread: the event loop's time, for the loop's own
        clock (a thread other than the loop's cannot ask anyio for it)."""
        clock = config._engine.clock
        return self.loop.time() if isinstance(clock, SystemClock) else clock.now()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what was still submitted when the host stopped, so no caller waits forever."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


class SyncConfig(Mapping[str, Any]):
    """A live configuration for threads: the async :class:`~aioconfig.Config`'s reads, plus
    blocking ``refresh()``, ``changes()`` and ``close()``. Made by :func:`load`.

    Reads (``config["db.port"]``, ``get``, ``snapshot``, ``bind``, ...) are exactly the async
    Config's: no lock, no I/O, never half an update. Callbacks passed to ``load`` run on the
    host thread; from there, ``refresh()`` and ``changes()`` raise ``RuntimeError`` (use
    ``await config.arefresh()`` in an async callback).
    """

    def __init__(
        self, sources: tuple[Source | str | os.PathLike[str], ...], options: Mapping[str, Any]
    ) -> None:
        self._sources = sources
        self._options = dict(options)
        self._config: Config = _load(*sources, **options)  # the options are checked here
        self._host: _Host | None = None
        self._lock = threading.Lock()  # start, close and fork; never taken by reads
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def _make(self) -> Config:
        return _load(*self._sources, **self._options)

    def _opened(self, config: Config) -> None:
        self._config = config  # one reference: readers switch over whole

    def _start(self) -> None:
        first = self._config
        host = self._host = _Host(lambda: first, self._opened)
        host.start()
        host.ready.wait()
        if host.error is not None:
            host.thread.join()
            self._closed = True
            raise host.error
        _live[id(self)] = self
        atexit.register(self._close_at_exit)

    def _after_fork_in_child(self) -> None:
        """In a new child process: the parent's thread is gone; start this process's own."""
        self._lock = threading.Lock()  # the parent's may have been held by a thread now gone
        host = self._host
        if self._closed or host is None:
            return
        _inherited.append((host, self._config))
        self._host = _Host(self._make, self._opened, inherited=self._config)
        self._host.start()  # the first load runs there; until then, the inherited snapshot

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Stop refreshing, close the sources and end the host thread. Idempotent.

        Waits at most ``timeout`` seconds for the thread (None: as long as it takes); past
        that it logs a warning and returns, leaving a daemon thread that cannot hold up exit.
        Called on the host thread (from a callback) it begins the shutdown and returns.
        """
        with self._lock:
            self._closed = True
            host = self._host
        _live.pop(id(self), None)
        atexit.unregister(self._close_at_exit)
        if host is None or host.pid != os.getpid():
            return
        if host.inherited is not None and self._config is host.inherited:
            # A forked child closed before its own first load: stop serving the parent's
            # snapshot too (that Config is the parent's, never closed here), as any closed
            # SyncConfig does.
            closed = self._make()
            closed._begin_close()
            self._config = closed
        host.stop()
        if host.on_thread():
            return
        host.thread.join(timeout)
        if host.thread.is_alive():
            logger.warning(
                "the SyncConfig's thread did not stop within %ss; left behind (a daemon "
                "thread: it does not hold up interpreter exit)",
                timeout,
            )

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - nothing may stop the other exit handlers
            logger.exception("closing a SyncConfig at exit failed")

    def __enter__(self) -> SyncConfig:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ready_host(
        self,
        what: str,
        deadline: float | None = None,
        timeout: float | None = None,
        *,
        force: bool = True,
    ) -> tuple[_Host, Config | None]:
        """The host and its open Config, waiting until ``deadline`` for a forked child's own
        first load (``force``: tried again at once); ``(host, None)`` if that load failed."""
        host = self._host
        if self._closed or host is None:
            raise ClosedError("this SyncConfig is closed")
        if host.on_thread():
            raise RuntimeError(
                f"SyncConfig.{what} was called on the SyncConfig's own thread (from a "
                "callback, say), where it would wait for itself; in an async callback use "
                "`await config.arefresh()`"
            )
        ready = host.wait_ready(deadline, force=force)
        if ready is None:
            raise TimeoutError(
                f"SyncConfig.{what}: process {host.pid} (forked) loaded no configuration of "
                f"its own within {timeout}s"
                + ("" if host.last_error is None else f"; its last attempt: {host.last_error}")
            )
        return host, (host.config if ready else None)

    def _standing_in(self) -> tuple[_Host, Config] | None:
        """In a forked child still without a Config of its own: its host and the parent's."""
        config, host = self._config, self._host
        if host is None or host.inherited is None or config is not host.inherited:
            return None
        return host, config

    # ------------------------------------------------------------------ reads (no loop, no lock)

    def __getitem__(self, key: str) -> Any:
        return self._config[key]

    @overload
    def get(self, key: str) -> Any | None: ...
    @overload
    def get(self, key: str, default: _T) -> Any | _T: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The value at dotted path ``key`` now, or ``default``."""
        return self._config.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._config

    def __iter__(self) -> Iterator[str]:
        return iter(self._config)

    def __len__(self) -> int:
        return len(self._config)

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot; hold on to it for a consistent view across many reads."""
        return self._config.snapshot

    @property
    def version(self) -> int:
        """The current snapshot's version (a forked child's own Config counts from 1 again)."""
        return self._config.version

    @property
    def sources(self) -> tuple[Source, ...]:
        return self._config.sources

    @property
    def environment(self) -> str:
        return self._config.environment

    @property
    def flags(self) -> FlagConfig:
        return self._config.flags

    @property
    def async_config(self) -> Config:
        """The hosted async Config, for async code running on the host thread (callbacks)."""
        return self._config

    def bind(self, model: type[_M]) -> _M:
        """The current snapshot as an instance of ``model`` (see ``Config.bind``)."""
        return self._config.bind(model)

    def history(self, key: str, *, reveal: bool = False) -> list[HistoryEntry]:
        return self._config.history(key, reveal=reveal)

    def explain(self, key: str, *, reveal: bool = False) -> str:
        return self._config.explain(key, reveal=reveal)

    def get_value(self, key: str, default: _T, user: User | None = None) -> _T | Any:
        """Feature flag ``key`` for ``user`` (see ``Config.get_value``)."""
        return self._config.get_value(key, default, user)

    def get_value_details(
        self, key: str, default: _T, user: User | None = None
    ) -> EvaluationDetails[_T | Any]:
        return self._config.get_value_details(key, default, user)

    def get_all_keys(self) -> list[str]:
        return self._config.get_all_keys()

    def get_all_values(self, user: User | None = None) -> dict[str, Any]:
        return self._config.get_all_values(user)

    def statistics(self) -> ConfigStatistics:
        """Counters for monitoring (see ``Config.statistics``).

        In a forked child that has not loaded its own configuration yet, ``state`` is
        ``"opening"``, or ``"failed"`` once a first load failed (``last_error`` says why; it is
        retried), while reads serve the inherited snapshot, whose ``version`` this is.
        """
        standing = self._standing_in()
        if standing is None:
            return self._config.statistics()
        host, inherited = standing
        failures = host.failures
        return ConfigStatistics(
            state="failed" if failures else "opening",
            version=inherited.snapshot.version,
            refreshes=0,
            fetches=0,
            errors=failures,
            consecutive_failures=failures,
            last_error=host.last_error,
            subscribers=0,
        )

    def status(self) -> ConfigStatus:
        """Where each source stands now (see ``Config.status``), from any thread; after
        ``close()``, ``state`` is ``"closed"``. In a forked child without its own
        configuration yet, ``state`` is that of ``statistics()``."""
        host = self._host
        config = self._config
        if host is None:
            return config.status()  # pragma: no cover - a SyncConfig always has a host
        standing = self._standing_in()
        if standing is None:
            return config._status_at(host.now(config))
        _, inherited = standing
        attempt = inherited if host.config is None else host.config  # its own attempt's
        status = attempt._status_at(host.now(attempt))
        return ConfigStatus(
            self.statistics().state, inherited.snapshot.version, False, status.sources
        )

    # ------------------------------------------------------------------ calls that wait

    def refresh(self, *, force: bool = False, timeout: float | None = None) -> RefreshResult:
        """``Config.refresh()`` from any thread, blocking it; callers share flights as usual.

        Raises ``TimeoutError`` after ``timeout`` seconds (the refresh itself goes on for the
        others), and ``RuntimeError`` on the host thread, where it would wait for itself.

        In a forked child whose own first load failed, the answer is that failure
        (``result.error``, with the inherited snapshot); ``force`` tries the load again at
        once instead of waiting out the backoff. ``timeout`` bounds the whole call.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        host, config = self._ready_host("refresh()", deadline, timeout, force=force)
        if config is None:
            return self._not_loaded(host)
        future = host.submit(config.refresh(force=force))
        return _wait(future, _left(deadline), "refresh()", said=timeout)

    async def arefresh(self, *, force: bool = False) -> RefreshResult:
        """``refresh()`` for async code on any event loop (an ASGI view, an async callback)."""
        current = self._host
        if current is not None and current.on_thread():
            return await self._config.refresh(force=force)
        host, config = await anyio.to_thread.run_sync(
            partial(self._ready_host, "arefresh()", force=force)
        )
        if config is None:
            return self._not_loaded(host)
        future = host.submit(config.refresh(force=force))
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.CancelledError:
            raise ClosedError("the SyncConfig was closed during the refresh") from None

    def _not_loaded(self, host: _Host) -> RefreshResult:
        """A forked child's first load failed again: the error, and what serves meanwhile."""
        snapshot = self._config.snapshot  # the inherited one, or ClosedError
        return RefreshResult(error=host.last_error, snapshot=snapshot)

    def changes(
        self,
        keys: Iterable[str] | str | None = None,
        *,
        max_buffer: int = 16,
        timeout: float | None = None,
    ) -> SyncChangeStream:
        """Change events for a thread: ``with config.changes() as events: for event in events:``.

        Each wait for the next event lasts at most ``timeout`` seconds, then raises
        ``TimeoutError`` (the subscription stays; iterate again). Iteration ends when the
        SyncConfig closes. Buffering and folding are those of ``Config.changes``.

        Entering is bounded too: in a forked child still without its own configuration, it
        tries the first load again at once and waits at most ``timeout`` (``max_init_wait``
        plus five seconds when None) for it, raising ``ClosedError`` saying why if it fails.
        """
        return SyncChangeStream(self, keys, max_buffer, timeout)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        if self._standing_in() is not None:
            state += f" (forked, its own load {self.statistics().state}: inherited snapshot)"
        return f"<SyncConfig {state} {self._config!r}>"


class SyncChangeStream(Iterator[ChangeEvent]):
    """A blocking iterator over one subscription; a context manager that unsubscribes."""

    def __init__(
        self,
        owner: SyncConfig,
        keys: Iterable[str] | str | None,
        max_buffer: int,
        timeout: float | None,
    ) -> None:
        self._owner = owner
        self._keys = keys
        self._max_buffer = max_buffer
        self.timeout = timeout
        self._host: _Host | None = None
        self._subscription: Any = None
        self._stream: ChangeStream | None = None
        # The wait in progress: kept across a timeout, so an event is never taken and lost.
        self._next: concurrent.futures.Future[ChangeEvent | None] | None = None

    def __enter__(self) -> SyncChangeStream:
        owner = self._owner
        bound = self.timeout
        if bound is None:
            bound = owner._config._max_init_wait + 5.0
        deadline = time.monotonic() + bound
        host, config = owner._ready_host("changes()", deadline, bound)
        if config is None:
            raise ClosedError(
                f"SyncConfig.changes(): process {host.pid} (forked) has no configuration of its "
                f"own yet (it serves the inherited snapshot and retries): {host.last_error}"
            ) from host.last_error
        subscription = config.changes(self._keys, max_buffer=self._max_buffer)
        future = host.submit(subscription.__aenter__())  # a round trip to a loop that is up
        self._stream = _wait(future, LOOP_ANSWER_TIMEOUT, "changes()")
        self._host, self._subscription = host, subscription
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None
        host, self._host = self._host, None
        if host is None or host.pid != os.getpid():
            return
        try:
            future = host.submit(self._subscription.__aexit__(None, None, None))
            _wait(future, LOOP_ANSWER_TIMEOUT, "changes()")
        except (ClosedError, TimeoutError):
            pass  # the host has stopped: the stream went with it

    def get(self, timeout: float | None = None) -> ChangeEvent | None:
        """The next event, waiting at most ``timeout`` seconds (``TimeoutError`` after that);
        None once the SyncConfig has closed."""
        host, stream = self._host, self._stream
        if host is None or stream is None:
            raise RuntimeError("use the change stream inside `with config.changes() as events:`")
        if host.on_thread():
            raise RuntimeError("a SyncConfig's changes cannot be read on its own thread")
        if self._next is None:
            try:
                self._next = host.submit(_next_or_none(stream))
            except ClosedError:
                return None
        try:
            event = _wait(self._next, timeout, "changes()", cancel=False)
        except ClosedError:
            event = None
        self._next = None
        return event

    def __next__(self) -> ChangeEvent:
        event = self.get(self.timeout)
        if event is None:
            raise StopIteration
        return event

    def pending(self) -> int:
        """Events queued and not yet read."""
        return 0 if self._stream is None else self._stream.pending()


async def _next_or_none(stream: ChangeStream) -> ChangeEvent | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (``time.monotonic()``), never negative; None: no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _wait(
    future: concurrent.futures.Future[_T],
    timeout: float | None,
    what: str,
    *,
    cancel: bool = True,
    said: float | None = None,
) -> _T:
    """The future's result in this thread; on a timeout or an interrupt, stop waiting.

    ``said``: the timeout the caller gave, for the message, when ``timeout`` is what is left.
    """
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        if cancel:
            future.cancel()
        shown = timeout if said is None else said
        raise TimeoutError(f"SyncConfig.{what} got no answer within {shown}s") from None
    except concurrent.futures.CancelledError:
        raise ClosedError(f"the SyncConfig was closed during {what}") from None
    except BaseException:
        if not future.done():  # KeyboardInterrupt, say: the loop-side waiter goes too
            future.cancel()
        raise


def _after_fork_in_child() -> None:
    for config in list(_live.values()):
        try:
            config._after_fork_in_child()
        except Exception:  # pragma: no cover - a fork hook must not raise
            logger.exception("restarting a SyncConfig after fork failed")


if hasattr(os, "register_at_fork"):  # every POSIX system; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
