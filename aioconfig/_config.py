"""Config: the live configuration a service reads, and the lifecycle of its background work."""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, TypeVar, overload

import anyio
import anyio.abc

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

from ._engine import Engine, RefreshResult, current_engine
from ._events import ChangeStream, Hub
from ._exceptions import ClosedError, ConfigError, KeyNotFound
from ._history import HistoryEntry, render
from ._pipeline import Pipeline
from ._snapshot import Snapshot
from .flags._compile import quick
from .flags._details import EvaluationDetails
from .flags._evaluate import _INFO, evaluate, info_is_enabled
from .flags._model import FlagConfig, Setting
from .flags._user import User
from .sources._base import Source

__all__ = ("Config", "ConfigStatistics", "ConfigStatus", "SourceStatus")

logger = logging.getLogger("aioconfig")


_T = TypeVar("_T")
_M = TypeVar("_M")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENING = "opening"
    OPENED = "opened"
    CLOSED = "closed"
    FAILED = "failed"  # closed because the background work failed


class _Unavailable:
    """Stands in for the flat index while the Config is not open, so reads fail loudly.

    Putting the check here, instead of in ``Config.get``, keeps the open read path to a single
    dict lookup.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def _raise(self, *args: object) -> NoReturn:
        raise ClosedError(self.message)

    get = __getitem__ = __contains__ = _raise


_NOT_OPEN = _Unavailable(
    "this Config is not open yet: use `config = await load(...)` or `async with load(...)`"
)
_CLOSED = _Unavailable("this Config is closed")


@dataclass(frozen=True, slots=True)
class ConfigStatistics:
    """A point-in-time record of what a Config has done (see ``Config.statistics()``)."""

    state: str
    version: int
    refreshes: int
    fetches: int
    errors: int
    consecutive_failures: int
    last_error: Exception | None
    subscribers: int
    #: Unexpected errors inside the engine (bugs), each logged and survived.
    engine_errors: int = 0


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How one source has been answering (see ``Config.status()``). Times are seconds ago."""

    name: str
    #: Since its last answer, new data or "not modified"; 0 while a watch is open (a live
    #: answer); None if it never answered.
    answered: float | None
    #: Since the first of the failures in a row it is in now; None while it answers.
    failing: float | None
    #: Failures since its last answer.
    failures: int
    #: The newest of them, as reported (secrets masked); None while it answers.
    error: str | None
    #: Whether its changes are pushed to the Config (a watch is open) rather than polled.
    watching: bool


@dataclass(frozen=True, slots=True)
class ConfigStatus:
    """Whether a Config serves what its sources hold: for health checks (``Config.status()``)."""

    #: ``"unopened"``, ``"opening"``, ``"opened"``, ``"closed"`` or ``"failed"``.
    state: str
    #: The serving snapshot's version; 0 before the first load.
    version: int
    #: Serving the cached configuration, because the sources failed at start-up and no full
    #: refresh has succeeded since.
    from_cache: bool
    sources: tuple[SourceStatus, ...]


class Config(Mapping[str, Any]):
    """The live configuration: a read-only mapping over the current :class:`Snapshot`.

    Made by :func:`load`. Use it as ``config = await load(...)`` (close it later with
    ``await config.aclose()``) or as ``async with load(...) as config:``. Reads are synchronous,
    never do I/O and never lock; a refresh swaps in a whole new snapshot with one assignment.
    """

    def __init__(self, pipeline: Pipeline, *, max_init_wait: float, **engine: Any) -> None:
        # Made by load(), which checks every option; ``engine`` goes to the Engine as it is.
        self._flat: Any = _NOT_OPEN
        self._flag_index: Any = _NOT_OPEN
        self._default_user: User | None = None
        self._bound: Any = _NOT_OPEN
        self._state = _State.UNOPENED
        self._max_init_wait = max_init_wait
        self._hub = Hub()
        self._engine = Engine(pipeline, publish=self._swap, hub=self._hub, **engine)
        self._stack: AsyncExitStack | None = None  # ``async with``: the task group
        self._outer: anyio.abc.TaskGroup | None = None
        self._host: _Host | None = None  # ``await load()``: the task that owns the work
        self._opening: anyio.CancelScope | None = None
        self._background: anyio.CancelScope | None = None
        self._background_done: anyio.Event | None = None
        self._closing = False
        self._closed: anyio.Event | None = None  # set once everything is released
        self._failure: ConfigError | None = None  # why the background stopped, if it failed

    # ------------------------------------------------------------------ reads (no I/O, no lock)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._flat[key]
        except KeyError:
            raise KeyNotFound(key) from None

    @overload
    def get(self, key: str) -> Any | None: ...
    @overload
    def get(self, key: str, default: _T) -> Any | _T: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The value at dotted path ``key`` (``"db.port"``) now, or ``default``."""
        return self._flat.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._flat

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot)

    def __len__(self) -> int:
        return len(self.snapshot)

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot. Hold on to it for a consistent view across many reads."""
        snapshot = self._engine.snapshot
        if snapshot is None or self._state is not _State.OPENED:
            self._check_open()
        assert snapshot is not None
        return snapshot

    @property
    def version(self) -> int:
        """The current snapshot's version (1 after the first load, one more per swap)."""
        return self.snapshot.version

    @property
    def sources(self) -> tuple[Source, ...]:
        """The sources, earliest (lowest precedence) first."""
        return self._engine.sources

    @property
    def environment(self) -> str:
        """The active environment (``load(env=...)`` or the environment variable)."""
        return self._engine.environment

    def bind(self, model: type[_M]) -> _M:
        """The current snapshot as an instance of ``model`` (a pydantic model or a dataclass).

        ``settings = config.bind(Settings)`` is typed as ``Settings``. The instance is built
        once per snapshot version and cached on it, so calling ``bind`` on every request costs
        a dict lookup; after a swap the next call builds the new version's. Pass the model to
        ``load(models=[...])`` as well to have every candidate checked before the swap.
        """
        try:
            instance: _M = self._bound[model]  # the current snapshot's, or ClosedError
        except KeyError:
            snapshot = self._engine.snapshot
            assert snapshot is not None
            instance = snapshot.bind(model)
        return instance

    # ------------------------------------------------------------------ provenance

    def history(self, key: str, *, reveal: bool = False) -> list[HistoryEntry]:
        """Every layer that sets dotted ``key``, newest (highest precedence) first.

        Each entry names the source and the exact origin (file and environment section,
        variable, URL, etcd key and revision), the value (masked for secrets unless
        ``reveal``), and, on the entry serving now, the snapshot version that brought it.
        Validators' defaults and casts and ``@format`` results come first, over the source
        they build on. Worked out when asked: it costs nothing until then.
        """
        self.snapshot  # noqa: B018 - raises ClosedError when not open
        return self._engine.history(key, reveal=reveal)

    def explain(self, key: str, *, reveal: bool = False) -> str:
        """:meth:`history` as a table for people."""
        return render(key, self.history(key, reveal=reveal))

    # ------------------------------------------------------------------ feature flags

    @property
    def flags(self) -> FlagConfig:
        """The current feature flags (empty when no source provides any)."""
        return self.snapshot.flags

    def get_value(self, key: str, default: _T, user: User | None = None) -> _T | Any:
        """The value of feature flag ``key`` for ``user`` now. Never raises for a flag problem.

        ``user`` defaults to ``load(default_user=...)``. On a problem (no such flag, a broken
        rule, a value of the wrong type, a circular prerequisite) the answer is ``default``, and
        the problem is logged on ``aioconfig.flags`` and shown by :meth:`get_value_details`.
        Raises only ``ClosedError`` when the Config is not open.
        """
        # The quiet path, when the flags logger is known to be below INFO (logging's own cache
        # of isEnabledFor says False; a KeyError when it was emptied): a flag without targeting
        # asked for with a default of its type is its value; one with targeting, for a User,
        # goes to its compiled form (see flags._compile). Anything else (a default of another
        # type, to be warned about; whatever the compiled form gives up on): the evaluation.
        try:
            if not info_is_enabled[_INFO]:
                value = self._flag_index[key]  # a flag's value for everyone, or its Setting
                if value.__class__ is default.__class__:
                    return value
                if value.__class__ is Setting:
                    who = self._default_user if user is None else user
                    if who.__class__ is User:
                        value = (value.quick or quick(value))(who._attributes).value
                        if value.__class__ is default.__class__ or default is None:
                            return value
                elif default is None:  # no type to be warned about
                    return value
        except Exception:  # KeyError, ClosedError, or the quiet path giving up: all said below
            pass
        snapshot = self._engine.snapshot
        if snapshot is None or self._flag_index.__class__ is _Unavailable:
            self._check_open()
        assert snapshot is not None
        return evaluate(
            snapshot.flags, key, default, snapshot.default_user if user is None else user
        ).value

    def get_value_details(
        self, key: str, default: _T, user: User | None = None
    ) -> EvaluationDetails[_T | Any]:
        """:meth:`get_value` with its reasons: variation id, the targeting rule or percentage
        option that decided, and ``error`` when ``default`` was returned."""
        return self.snapshot.get_value_details(key, default, user)

    def get_all_keys(self) -> list[str]:
        """Every feature-flag key, in source order."""
        return self.snapshot.get_all_keys()

    def get_all_values(self, user: User | None = None) -> dict[str, Any]:
        """Every feature flag evaluated for ``user`` (None for any that fails)."""
        return self.snapshot.get_all_values(user)

    def _swap(self, snapshot: Snapshot) -> None:
        # The engine has just made ``snapshot`` current; readers see it through this one index,
        # and flags through the other (a value for everyone, or the Setting to evaluate).
        self._flat = snapshot._flat
        self._flag_index = snapshot.flags.index()
        self._default_user = snapshot.default_user
        self._bound = snapshot._bound

    # ------------------------------------------------------------------ refresh and events

    async def refresh(self, *, force: bool = False) -> RefreshResult:
        """Fetch from the sources and swap in a new snapshot if anything changed.

        Unless ``force`` is true, returns at once with an unchanged result when less than
        ``refresh_interval`` has passed since the last check (or, in ``"manual"`` mode,
        always) and no refresh is in flight. Callers that arrive while a refresh is in flight
        join it and all get its result.
        Failures do not raise: they come back in ``result.error`` and the last good snapshot
        keeps serving.
        """
        self._check_open()
        return await self._engine.refresh(force)

    def changes(
        self, keys: Iterable[str] | str | None = None, *, max_buffer: int = 16
    ) -> AbstractAsyncContextManager[ChangeStream]:
        """Subscribe to change events: ``async with config.changes() as events: async for ...``.

        ``keys`` limits events to those dotted keys and prefixes (``["db"]`` matches
        ``db.port``). Each subscriber has its own buffer of ``max_buffer`` events; a subscriber
        that falls behind has its events coalesced and never slows the refresh or anyone else.
        Error events (``event.error`` set) reach every subscriber. The stream ends when the
        Config closes.
        """
        self._check_open()
        return self._hub.subscribe(keys, max_buffer)

    def statistics(self) -> ConfigStatistics:
        """Counters for monitoring: refreshes, fetches, errors, subscribers."""
        engine = self._engine
        return ConfigStatistics(
            state=self._state.value,
            version=0 if self._engine.snapshot is None else self._engine.snapshot.version,
            refreshes=engine.refreshes,
            fetches=engine.fetches,
            errors=engine.errors,
            consecutive_failures=engine.failures,
            last_error=engine.last_error,
            subscribers=len(self._hub),
            engine_errors=engine.engine_errors,
        )

    def status(self) -> ConfigStatus:
        """Where each source stands now: for health checks and ops endpoints."""
        return self._status_at(self._engine.clock.now())

    def _status_at(self, now: float) -> ConfigStatus:
        # ``now`` in the engine's clock, read by the caller: a thread other than the event
        # loop's (aioconfig.sync) cannot ask the loop's clock, but it can read the loop's time.
        engine = self._engine
        sources = tuple(
            SourceStatus(
                name=source.name,
                answered=health.age(now, watching),
                failing=None if health.failing_since is None else now - health.failing_since,
                failures=health.failures,
                error=None if health.error is None else str(health.error),
                watching=watching,
            )
            for source, health, watching in engine.source_health()
        )
        version = 0 if engine.snapshot is None else engine.snapshot.version
        return ConfigStatus(self._state.value, version, engine.from_cache, sources)

    def _check_open(self) -> None:
        if self._state is not _State.OPENED:
            raise ClosedError(self._unavailable().message)

    def _unavailable(self) -> _Unavailable:
        if self._failure is not None:
            return _Unavailable(str(self._failure))
        return _NOT_OPEN if self._state in (_State.UNOPENED, _State.OPENING) else _CLOSED

    # ------------------------------------------------------------------ lifecycle
    #
    # Opening: the first load runs in the opener's task; then the background (the engine's
    # tasks) starts in a task group, the ``async with`` block's or the host task's. Closing:
    # ``_begin_close`` (sync: refuse reads and refreshes, cancel the background and any open in
    # progress) then ``_finish_close`` (shielded, once: wait for the background, close the
    # sources). ``aclose()`` called from the Config's own tasks (a callback) only begins it.

    async def __aenter__(self) -> Config:
        self._claim()
        stack = AsyncExitStack()
        try:
            tg = self._outer = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_callback(self._finish_close)
            await self._open(tg)
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._finish_close()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
        if self._failure is not None and exc is None:
            raise self._failure

    def __await__(self) -> Generator[Any, None, Config]:
        return self._open_hosted().__await__()

    async def _open_hosted(self) -> Config:
        """``await load(...)``: the background work lives in a host task this Config owns.

        A task group cannot stay entered across the caller's ``await``, so a host task enters
        it instead (an asyncio task, or a trio system task); ``aclose()`` stops it and waits.
        """
        spawn = _host_spawner()  # before any state changes: a clear error on other loops
        self._claim()
        host = self._host = _Host()
        spawn(self._run_host, host)
        try:
            await host.ready.wait()
        except BaseException:  # the opener was cancelled: take the host down with it
            self._begin_close()
            with anyio.CancelScope(shield=True):
                await host.done.wait()
            raise
        if host.error is not None:
            with anyio.CancelScope(shield=True):
                await host.done.wait()
            raise host.error
        return self

    async def _run_host(self, host: _Host) -> None:
        try:
            async with anyio.create_task_group() as tg:
                try:
                    await self._open(tg)
                except Exception as exc:
                    host.error = exc
                    self._begin_close()
                    return
                finally:
                    host.ready.set()
                await host.stop.wait()
                await self._finish_close()
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    await self._finish_close()
            finally:
                host.done.set()

    def _claim(self) -> None:
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"a Config can be opened once; this one is {self._state.value}")
        self._state = _State.OPENING

    async def _open(self, tg: anyio.abc.TaskGroup) -> None:
        with anyio.CancelScope() as self._opening:
            await self._engine.initial_load(self._max_init_wait)
        self._opening = None
        if not self._closing:
            await tg.start(self._run_background, name="aioconfig background")
        if self._closing:
            raise ClosedError("the Config was closed while it was opening")
        self._state = _State.OPENED

    async def _run_background(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Background work runs under its own cancel scope: closing cancels it, never the code
        # inside the user's ``async with`` block, which shares the outer task group's scope.
        done = self._background_done = anyio.Event()
        try:
            with anyio.CancelScope() as self._background:
                await self._engine.run(task_status=task_status)
        except Exception as exc:  # against all expectation: say so wherever the user looks
            self._died(exc)
        finally:
            done.set()

    def _died(self, exc: Exception) -> None:
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]
        logger.error("the Config's background work failed", exc_info=cause)
        failure = ConfigError(
            f"this Config stopped: its background work failed: {type(cause).__name__}: {cause}"
        )
        failure.__cause__ = cause
        self._failure = failure
        self._begin_close()
        self._finish_soon()

    def _begin_close(self) -> None:
        """Refuse reads and refreshes; cancel the background and any open in progress."""
        if self._closing:
            return
        self._closing = True
        self._state = _State.CLOSED if self._failure is None else _State.FAILED
        self._flat = self._flag_index = self._bound = self._unavailable()
        self._engine.stop()
        if self._opening is not None:
            self._opening.cancel()
        if self._background is not None:
            self._background.cancel()
        self._hub.close()

    async def _finish_close(self) -> None:
        """Close and wait until everything is released. Idempotent; shielded, so a cancelled
        caller still leaves nothing half closed, and no caller's await is cancelled."""
        self._begin_close()
        with anyio.CancelScope(shield=True):
            if self._closed is not None:
                await self._closed.wait()
                return
            self._closed = anyio.Event()
            try:
                if self._background_done is not None:
                    await self._background_done.wait()
                await self._engine.release()
                await self._engine.aclose_sources()
            finally:
                self._closed.set()

    def _finish_soon(self) -> None:
        """From the Config's own tasks: let the owner finish closing, without waiting here."""
        if self._host is not None:
            self._host.stop.set()
        elif self._outer is not None:
            self._outer.start_soon(self._finish_close, name="aioconfig close")

    async def aclose(self) -> None:
        """Stop all background work and release every resource. Idempotent and cancel-safe.

        Called from a callback (or ``validate=``), it begins the shutdown and returns at once:
        the rest happens when that callback has returned. Raises ``ConfigError`` saying why if
        the background work had failed.
        """
        if current_engine.get() is self._engine:
            self._begin_close()
            self._finish_soon()
        elif self._host is not None:
            self._begin_close()  # aborts an open in progress
            self._host.stop.set()
            with anyio.CancelScope(shield=True):
                await self._host.done.wait()
        elif self._outer is not None:
            await self._finish_close()
        elif self._state is _State.UNOPENED:
            self._begin_close()
        if self._failure is not None:
            raise self._failure

    def __repr__(self) -> str:
        version = "-" if self._engine.snapshot is None else self._engine.snapshot.version
        names = [source.name for source in self._engine.sources]
        return f"<Config {self._state.value} version={version} sources={names!r}>"


@dataclass(slots=True)
class _Host:
    """``await load()``'s host task: the handshake with the opener and with ``aclose()``."""

    ready: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None
    task: object = None  # asyncio keeps only a weak reference to its tasks


def _host_spawner() -> Callable[[Callable[[_Host], Awaitable[None]], _Host], None]:
    """How to start a task that outlives the caller's ``await``, on the running event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:

        def spawn_asyncio(run: Callable[[_Host], Awaitable[None]], host: _Host) -> None:
            host.task = loop.create_task(run(host), name="aioconfig host")  # type: ignore[arg-type]

        return spawn_asyncio
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:

            def spawn_trio(run: Callable[[_Host], Awaitable[None]], host: _Host) -> None:
                host.task = trio.lowlevel.spawn_system_task(run, host, name="aioconfig host")

            return spawn_trio
    raise RuntimeError(
        "`await load(...)` runs on asyncio or trio only; "
        "use `async with load(...) as config:` instead"
    )
