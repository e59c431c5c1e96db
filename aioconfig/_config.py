"""Config: the live configuration a service reads, and the lifecycle of its background work."""

from __future__ import annotations

import asyncio
import enum
import math
import os
import random
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, TypeVar, overload

import anyio
import anyio.abc

from . import _layers
from ._cache import Cache
from ._clock import Clock, SystemClock
from ._events import ChangeStream, Hub
from ._exceptions import ClosedError, KeyNotFound
from ._history import HistoryEntry, render
from ._layers import Converter
from ._refresh import (
    Callback,
    Engine,
    Mode,
    RefreshResult,
    Validate,
    WatchKey,
)
from ._secrets import DEFAULT_SECRET_MATCHER, SecretMatcher
from ._snapshot import Snapshot
from ._validators import Validator
from .flags._details import EvaluationDetails
from .flags._evaluate import _INFO, info_cached
from .flags._model import FlagConfig
from .flags._user import User
from .sources._base import Source
from .sources._env import Env

__all__ = ("Config", "ConfigStatistics", "load")

_T = TypeVar("_T")
_M = TypeVar("_M")
_MODES = ("auto", "lazy", "manual")
DEFAULT_REFRESH_INTERVAL = 30.0


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENING = "opening"
    OPENED = "opened"
    CLOSED = "closed"


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


class _Evaluate:
    """Marks a flag that needs evaluating; no default value can be of this class."""


_EVALUATE = _Evaluate()


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


class Config(Mapping[str, Any]):
    """The live configuration: a read-only mapping over the current :class:`Snapshot`.

    Made by :func:`load`. Use it as ``config = await load(...)`` (close it later with
    ``await config.aclose()``) or as ``async with load(...) as config:``. Reads are synchronous,
    never do I/O and never lock; a refresh swaps in a whole new snapshot with one assignment.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        refresh_interval: float,
        jitter: float,
        mode: Mode,
        refresh_on: Sequence[WatchKey],
        max_init_wait: float,
        validate: Validate | None,
        on_change: Callback | None,
        on_refresh_success: Callback | None,
        on_refresh_error: Callback | None,
        clock: Clock,
        rng: random.Random,
        cache: Cache | None = None,
        default_user: User | None = None,
        environment: str | None = None,
        environments: bool = False,
        case_sensitive: bool = True,
        converters: Mapping[str, Converter] | None = None,
        validators: Sequence[Validator] = (),
        models: Sequence[type] = (),
        secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    ) -> None:
        self._flat: Any = _NOT_OPEN
        self._fixed: Any = _NOT_OPEN
        self._bound: Any = _NOT_OPEN
        self._state = _State.UNOPENED
        self._max_init_wait = max_init_wait
        self._hub = Hub()
        self._engine = Engine(
            sources,
            publish=self._swap,
            hub=self._hub,
            refresh_interval=refresh_interval,
            jitter=jitter,
            mode=mode,
            refresh_on=refresh_on,
            validate=validate,
            on_change=on_change,
            on_refresh_success=on_refresh_success,
            on_refresh_error=on_refresh_error,
            clock=clock,
            rng=rng,
            cache=cache,
            default_user=default_user,
            environment=environment,
            environments=environments,
            fold_case=not case_sensitive,
            converters=converters,
            validators=validators,
            models=models,
            secret=secret,
        )
        self._stack: AsyncExitStack | None = None
        self._host: asyncio.Task[None] | None = None
        self._host_stop: anyio.Event | None = None
        self._background: anyio.CancelScope | None = None
        self._background_done: anyio.Event | None = None

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
        if snapshot is None or self._state is _State.CLOSED:
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
        return render(key, self.history(key, reveal=reveal), shown=_shown_value)

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
        value = self._fixed.get(key, _EVALUATE)
        # A flag without targeting asked for with a default of its type: nothing to evaluate,
        # nothing to warn about, and (with INFO off) nothing to log. Else, the whole evaluation.
        if value.__class__ is default.__class__ and info_cached(_INFO) is False:
            return value
        snapshot = self._engine.snapshot
        assert snapshot is not None  # the check above raised if the Config is not open
        return snapshot.get_value(key, default, user)

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
        # and flags without targeting through the other.
        self._flat = snapshot._flat
        self._fixed = snapshot.flags.fixed_values()
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
        )

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise ClosedError(_CLOSED.message)
        if self._state is not _State.OPENED:
            raise ClosedError(_NOT_OPEN.message)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Config:
        self._claim()
        stack = AsyncExitStack()
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_callback(self._shutdown)
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
        await self._shutdown()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    def __await__(self) -> Generator[Any, None, Config]:
        return self._open_hosted().__await__()

    async def _open_hosted(self) -> Config:
        """``await load(...)``: the background work lives in a task this Config owns and joins.

        A task group cannot stay entered across the caller's ``await``, so a host task this
        Config owns enters it instead; ``aclose()`` stops that task and waits for it.
        """
        self._claim()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._host_stop = anyio.Event()
        host = self._host = loop.create_task(self._run_host(ready), name="aioconfig host")
        try:
            await asyncio.shield(ready)
        except BaseException:
            self._host = None
            if not ready.done():  # the opener was cancelled: take the host down with it
                host.cancel()
            await asyncio.gather(host, return_exceptions=True)
            if ready.done() and not ready.cancelled():
                ready.exception()  # retrieved: it is being raised right here
            raise
        return self

    async def _run_host(self, ready: asyncio.Future[None]) -> None:
        assert self._host_stop is not None
        try:
            async with anyio.create_task_group() as tg:
                try:
                    await self._open(tg)
                except Exception as exc:
                    ready.set_exception(exc)
                    return
                ready.set_result(None)
                await self._host_stop.wait()
                await self._shutdown()
        finally:
            if not ready.done():
                ready.cancel()
            await self._shutdown()

    def _claim(self) -> None:
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"a Config can be opened once; this one is {self._state.value}")
        self._state = _State.OPENING

    async def _open(self, tg: anyio.abc.TaskGroup) -> None:
        await self._engine.initial_load(self._max_init_wait)
        await tg.start(self._run_background, name="aioconfig background")
        self._state = _State.OPENED

    async def _run_background(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Background work runs under its own cancel scope: closing cancels it, never the code
        # inside the user's ``async with`` block, which shares the outer task group's scope.
        done = self._background_done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._background = scope
                async with anyio.create_task_group() as inner:
                    self._engine.start(inner)
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            done.set()

    async def _shutdown(self) -> None:
        """Stop the background work, end the event streams, release the sources. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._flat = self._fixed = self._bound = _CLOSED
        self._engine.stop()
        if self._background is not None:
            self._background.cancel()
            self._background = None
        self._hub.close()
        with anyio.CancelScope(shield=True):
            if self._background_done is not None:
                await self._background_done.wait()
            await self._engine.aclose_sources()

    async def aclose(self) -> None:
        """Stop all background work and release every resource. Idempotent."""
        if self._host is not None:
            host, self._host = self._host, None
            assert self._host_stop is not None
            self._host_stop.set()
            await asyncio.gather(host, return_exceptions=True)
        elif self._stack is not None:
            # Any task may stop the work and wait for it to end; the (by then empty) task group
            # is left where it was entered, when the ``async with`` block ends.
            await self._shutdown()
        elif self._state is _State.UNOPENED:
            self._state = _State.CLOSED
            self._flat = self._fixed = self._bound = _CLOSED

    def __repr__(self) -> str:
        version = "-" if self._engine.snapshot is None else self._engine.snapshot.version
        names = [source.name for source in self._engine.sources]
        return f"<Config {self._state.value} version={version} sources={names!r}>"


def load(
    *sources: Source | str | os.PathLike[str],
    refresh_interval: float | None = None,
    jitter: float = 0.1,
    mode: Mode = "auto",
    refresh_on: Iterable[WatchKey | str] = (),
    max_init_wait: float = 5.0,
    validate: Validate | None = None,
    on_change: Callback | None = None,
    on_refresh_success: Callback | None = None,
    on_refresh_error: Callback | None = None,
    cache: Cache | None = None,
    default_user: User | None = None,
    env: str | None = None,
    environments: bool = False,
    env_var: str | None = None,
    case_sensitive: bool = True,
    converters: Mapping[str, Converter] | None = None,
    validators: Iterable[Validator] = (),
    models: Iterable[type] = (),
    secret_patterns: Iterable[str] | None = None,
    clock: Clock | None = None,
    seed: int | None = None,
) -> Config:
    """Describe a live configuration; ``await`` it or use it with ``async with`` to start it.

    Later sources override earlier ones: mappings are deep-merged, anything else replaced. A
    ``str`` or ``Path`` means ``File(path)``. ``default_user`` is who feature flags are
    evaluated for when a call names no user. See the README for every option.

    ``validators``: every candidate snapshot must pass them (all failures are listed in one
    ``ValidationError``); their defaults and casts go into the snapshot. ``models``: pydantic
    models or dataclasses every candidate must fit (see ``Config.bind``). ``secret_patterns``:
    fnmatch patterns for the last segment of keys whose values are masked wherever they are
    shown (default ``*password*``, ``*secret*``, ``*token*``, ``*key``).

    Environments: with ``environments=True`` files hold sections (``[default]``,
    ``[production]``, ..., ``[global]``); the active one is ``env``, else the variable
    ``env_var`` (default: ``<PREFIX>_ENV`` for the first ``Env(prefix)`` source, else
    ``AIOCONFIG_ENV``), else ``"development"``.
    """
    resolved: list[Source] = []
    for source in sources:
        if isinstance(source, Source):
            resolved.append(source)
        elif isinstance(source, (str, os.PathLike)):
            from .sources._file import File

            resolved.append(File(source))
        else:
            raise TypeError(
                f"load() takes Source objects or file paths, got {type(source).__name__}"
            )
    if refresh_interval is None:
        # Each source's suggestion (ConfigCat: 60 s), 30 s for one without (Azure App
        # Configuration's default); the shortest wins, so no source is polled less than it asks.
        refresh_interval = (
            min(
                DEFAULT_REFRESH_INTERVAL if s.refresh_interval is None else s.refresh_interval
                for s in resolved
            )
            if resolved
            else DEFAULT_REFRESH_INTERVAL
        )
    _check_number("refresh_interval", refresh_interval)
    _check_number("max_init_wait", max_init_wait)
    if not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, _MODES))}; got {mode!r}")
    if mode == "auto" and refresh_interval == 0:
        raise ValueError("refresh_interval must be greater than 0 in 'auto' mode")
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(
            f"cache must have async get(key) and set(key, value), got {type(cache).__name__}"
        )
    environment = _environment(resolved, env, env_var)
    if converters is not None:
        _layers.converters(converters)  # checks the names now, not at the first load
    if default_user is not None and not isinstance(default_user, User):
        raise TypeError(
            f"default_user must be an aioconfig.flags.User, got {type(default_user).__name__}"
        )
    sentinels = tuple(w if isinstance(w, WatchKey) else WatchKey(w) for w in refresh_on)
    for name, callback in (
        ("validate", validate),
        ("on_change", on_change),
        ("on_refresh_success", on_refresh_success),
        ("on_refresh_error", on_refresh_error),
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable, got {type(callback).__name__}")
    return Config(
        resolved,
        refresh_interval=float(refresh_interval),
        jitter=float(jitter),
        mode=mode,
        refresh_on=sentinels,
        max_init_wait=float(max_init_wait),
        validate=validate,
        on_change=on_change,
        on_refresh_success=on_refresh_success,
        on_refresh_error=on_refresh_error,
        clock=SystemClock() if clock is None else clock,
        rng=random.Random(seed),
        cache=cache,
        default_user=default_user,
        environment=environment,
        environments=environments,
        case_sensitive=case_sensitive,
        converters=converters,
        validators=_checked_validators(validators),
        models=tuple(models),
        secret=DEFAULT_SECRET_MATCHER
        if secret_patterns is None
        else SecretMatcher(secret_patterns),
    )


def _shown_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked_validators(validators: Iterable[Validator]) -> tuple[Validator, ...]:
    checked = tuple(validators)
    for validator in checked:
        if not isinstance(validator, Validator):
            raise TypeError(
                f"validators must be aioconfig.Validator objects, got {type(validator).__name__}"
            )
    return checked


def _environment(sources: Sequence[Source], env: str | None, env_var: str | None) -> str | None:
    """The active environment's name: ``env``, else the switch variable, else None."""
    if env is not None:
        if not isinstance(env, str) or not env.strip():
            raise ValueError(f"env must be a non-empty environment name, got {env!r}")
        return env
    if env_var is None:
        prefixes = [s.prefix for s in sources if isinstance(s, Env)]
        env_var = f"{prefixes[0]}ENV" if prefixes else "AIOCONFIG_ENV"
    return os.environ.get(env_var) or None


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
