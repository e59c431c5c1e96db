"""The refresh engine: one writer, one notifier, single flight with generations.

The data path runs one way:

```
  poll loop ──┐
  refresh() ──┴─ flight ─ fetcher ─┐
                                   ├─▶ applier ─▶ candidate ─▶ validate ─▶ swap ─┐
  watch() ──────── emit(payload) ──┘   (the one writer)                          │
                                                                                 ▼
             events / on_change / on_refresh_* / cache  ◀──────────────────  notifier
```

* **One writer.** Poll results, pushes and forced refreshes all go to the applier task through
  one bounded stream. Only the applier builds, validates, swaps and counts; readers read one
  reference, so the write path needs no lock.
* **Order is decided once**, in the applier, by each payload's order key
  (``Payload.order``: etcd's revision, a file's read sequence) or, for a source that gives
  none, by the engine's sequence number taken when the fetch began or the push arrived. A
  payload older than what was already applied from its source is dropped.
* **One notifier** runs cache writes, the event fan-out and the callbacks serially, in version
  order. A callback may call ``refresh()`` (it then waits for the result only, never for the
  callbacks of its own flight) or ``aclose()`` (which then schedules the shutdown).
* **Single flight with generations.** One flight fetches at a time. A plain ``refresh()``
  joins the newest flight not yet resolved; ``refresh(force=True)`` joins one whose fetch has
  not started yet, or queues the next one, so its answer always comes from a fetch that began
  after the call. A flight's result is set before its callbacks run.
* **Errors are values.** A rejected candidate (a cast, a validator, ``validate=``, a model) is
  reported once per distinct candidate; an unexpected error in the engine is logged and
  counted and costs one message, never the background.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import anyio
import anyio.abc

from . import _cache
from ._cache_startup import flag_documents, restore, store
from ._clock import Clock
from ._events import ChangeEvent, Hub
from ._exceptions import (
    ClosedError,
    ConfigError,
    InitialLoadError,
    InitialValidationError,
    LoadError,
    SourceError,
    SourceUnavailable,
    ValidationError,
)
from ._history import HistoryEntry
from ._metrics import Metrics, metrics_for
from ._offload import off_loop
from ._pipeline import Pipeline, SourceState, rejection
from ._provenance import Provenance
from ._schedule import BACKOFF_BASE, Schedule, backoff_delay
from ._snapshot import Snapshot
from .sources._base import NotModified, Payload, Source

__all__ = ("Engine", "RefreshResult", "current_engine")

logger = logging.getLogger("aioconfig")

Mode = Literal["auto", "lazy", "manual"]
Callback = Callable[[Any], "Awaitable[None] | None"]
Validate = Callable[[Snapshot], "Awaitable[None] | None"]

_T = TypeVar("_T")
_MISSING_TOKEN = ("aioconfig:optional-source-missing",)
_INBOX = 64  # payloads waiting for the applier; a watch that gets ahead waits in emit()
_CLOSE_SOURCE_TIMEOUT = 10.0

#: The engine whose background task is running (unset elsewhere): ``aclose()`` and
#: ``refresh()`` called from a callback or a source must not wait on their own task.
current_engine: ContextVar[Engine | None] = ContextVar("aioconfig_engine", default=None)
#: Set in the applier only: ``refresh()`` from ``validate=`` would wait on itself.
_applying: ContextVar[Engine | None] = ContextVar("aioconfig_applying", default=None)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did. ``keys`` are the dotted keys that changed; ``error`` if it failed."""

    changed: bool = False
    keys: frozenset[str] = frozenset()
    error: Exception | None = None
    #: The snapshot serving after this refresh (None only if the Config never opened).
    snapshot: Snapshot | None = None
    #: The feature-flag keys whose evaluation may have changed.
    flags: frozenset[str] = frozenset()


class _Flight:
    """One fetch of some sources, shared by every caller that joins it."""

    __slots__ = ("began", "indexes", "notified", "ready", "result", "started")

    def __init__(self, indexes: Iterable[int]) -> None:
        self.indexes = set(indexes)
        self.started = False  # the fetch began: a forced refresh must wait for the next one
        self.began = 0.0  # when it began, in the event loop's time
        self.result: RefreshResult | None = None
        self.ready = anyio.Event()  # the result is set
        self.notified = anyio.Event()  # and its callbacks have run


@dataclass(slots=True)
class _Fetched:
    """A flight's answers: ``(sequence number, answer)`` per source, or its errors."""

    flight: _Flight
    answers: dict[int, tuple[int, Payload | NotModified]]
    errors: dict[int, Exception]


@dataclass(slots=True)
class _Pushed:
    """What a watch emitted: a version, or a problem with one version."""

    index: int
    seq: int
    item: Payload | SourceError


@dataclass(slots=True)
class _WatchDown:
    index: int
    error: Exception


_Message: TypeAlias = "_Fetched | _Pushed | _WatchDown"


@dataclass(slots=True)
class _Notice:
    """One outcome, for the notifier, in the order the applier decided. A changed result's
    snapshot goes to the cache with ``flags``, the flag documents it was built from."""

    result: RefreshResult
    event: ChangeEvent | None = None
    flags: Sequence[tuple[int, Any]] = ()
    flight: _Flight | None = None
    repeat: bool = False  # the same failure as the last one reported: not again


@dataclass(slots=True)
class _Health:
    """How one source has been answering, in the engine's clock (kept by the applier, and by
    the first load before the applier exists)."""

    answered_at: float | None = None  # the last answer: new data or "not modified"
    failing_since: float | None = None  # the first failure since it last answered
    failures: int = 0  # failures since it last answered
    error: Exception | None = None  # the newest of them

    def age(self, now: float, watching: bool) -> float | None:
        """Seconds since the source last answered; None if it never did. An open watch is a
        live answer (a dead one ends: etcd's read-idle timeout, a watcher's error), so a quiet,
        healthy watched source is 0 s stale rather than as old as its last change."""
        if self.answered_at is None:
            return None
        return 0.0 if watching else now - self.answered_at


class Engine:
    """Owns the sources' state and produces snapshots; the Config owns the engine."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        publish: Callable[[Snapshot], None],
        hub: Hub,
        refresh_interval: float,
        jitter: float,
        mode: Mode,
        validate: Validate | None,
        on_change: Callback | None,
        on_refresh_success: Callback | None,
        on_refresh_error: Callback | None,
        clock: Clock,
        rng: random.Random,
        cache: _cache.Cache | None = None,
        meter_provider: Any = None,
    ) -> None:
        # The pipeline (made by load(), from the options that shape the data) holds the
        # sources' states; only this engine changes them.
        self.pipeline = pipeline
        self._states = pipeline.states
        sources = [state.source for state in self._states]
        self.health = [_Health() for _ in sources]
        self._by_name = {source.name: source for source in sources}
        self._provenance = Provenance(self.pipeline)
        self.schedule = Schedule(refresh_interval, jitter, rng)
        self.mode = mode
        self.clock = clock
        self.rng = rng
        self._publish = publish
        self._hub = hub
        self._validate = validate
        self._on_change = on_change
        self._on_success = on_refresh_success
        self._on_error = on_refresh_error
        self._cache = cache
        self._cache_key = _cache.cache_key([source.name for source in sources])
        self.snapshot: Snapshot | None = None
        # Started from the cache: every source is polled until one full refresh succeeds.
        self._degraded = False
        self._seq = itertools.count(1)
        self._inbox: _Mailbox[_Message] = _Mailbox(_INBOX)  # to the applier
        self._notices: _Mailbox[_Notice] = _Mailbox(None)  # to the notifier: never waits
        self._flight: _Flight | None = None  # the newest flight not yet resolved
        self._queued: deque[_Flight] = deque()  # flights waiting for the fetcher
        self._unresolved: set[_Flight] = set()
        self._wake: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._stopped = False
        self._everything = frozenset(range(len(sources)))
        # The last failure reported: the same one again (an unchanged broken file, a candidate
        # rejected again) is not reported again until a refresh succeeds.
        self._failure: tuple[type, str] | None = None
        # The newest snapshot to cache, with its flag documents (release() may write it).
        self._to_store: tuple[Snapshot, Sequence[tuple[int, Any]]] | None = None
        self._stored = 0  # the version the notifier last wrote to the cache
        # statistics
        self.fetches = 0
        self.refreshes = 0
        self.errors = 0
        self.engine_errors = 0
        self.last_error: Exception | None = None
        self._meter_provider = meter_provider
        self._metrics: Metrics | None = None  # set at the first load
        self.metric_name = ",".join(source.name for source in sources)

    @property
    def sources(self) -> tuple[Source, ...]:
        return tuple(state.source for state in self._states)

    @property
    def environment(self) -> str:
        return self.pipeline.environment

    @property
    def interval(self) -> float:
        return self.schedule.interval

    @property
    def failures(self) -> int:
        return self.schedule.failures

    @property
    def from_cache(self) -> bool:
        """Serving the cached snapshot: no full refresh has succeeded since the start-up."""
        return self._degraded

    def source_health(self) -> list[tuple[Source, _Health, bool]]:
        """Each source, how it has been answering, and whether it is watched."""
        return [
            (state.source, health, state.watching)
            for state, health in zip(self._states, self.health, strict=True)
        ]

    def observe(self) -> tuple[int, int, list[tuple[str, float]]]:
        """For the observable metrics: version, subscribers, and each source's staleness."""
        now = self.clock.now()
        ages = [
            (state.source.name, age)
            for state, health in zip(self._states, self.health, strict=True)
            if (age := health.age(now, state.watching)) is not None
        ]
        return (0 if self.snapshot is None else self.snapshot.version), len(self._hub), ages

    def history(self, key: str, *, reveal: bool) -> list[HistoryEntry]:
        """Every layer that sets ``key``, highest precedence first (see ``Config.history``)."""
        if self.snapshot is None:
            return []
        return self._provenance.history(self.snapshot, key, reveal=reveal)

    # ------------------------------------------------------------------ start-up

    async def initial_load(self, max_init_wait: float) -> None:
        """Build the first good snapshot; retry transient failures for up to ``max_init_wait``.

        Runs in the opening task, before any background task exists, so it is the only writer.
        With a cache, a start-up that fails for any reason starts from the cached snapshot
        instead, if there is a usable one.
        """
        self._metrics = metrics_for(self._meter_provider)
        if self._metrics is not None:
            self._metrics.measure(self)
        try:
            try:
                await self._initial_load(max_init_wait)
            except InitialLoadError:
                raise
            except Exception as exc:  # a bug, or a source's data that breaks the build
                problem = ConfigError(f"building the configuration failed: {type(exc).__name__}")
                raise InitialLoadError([problem]) from exc
        except InitialLoadError as exc:
            if self._cache is None:
                raise
            snapshot = await restore(self._cache, self._cache_key, self.pipeline, self._check, exc)
            if snapshot is None:
                raise
            self.snapshot = snapshot
            self._publish(snapshot)
            self._degraded = True
            self.last_error = exc
            # The first retry waits as long as a server asked (Retry-After), as any failure's.
            self.schedule.failed(self.clock.now(), exc.retry_after)
            return
        if self._cache is not None and self.snapshot is not None:
            # No background task runs yet: nothing can be written out of order.
            flags = flag_documents(self._states)
            await store(self._cache, self._cache_key, self.snapshot, flags)
            self._stored = self.snapshot.version

    async def _initial_load(self, max_init_wait: float) -> None:
        errors: dict[int, Exception] = {}
        validating = False
        attempt = 0
        everything = range(len(self._states))
        deadline = anyio.current_time() + max_init_wait
        reported: dict[int, str] = {}  # per source, the failure logged at WARNING last
        with anyio.move_on_after(max_init_wait):
            while True:
                errors = {i: _Timeout(s.source.name) for i, s in enumerate(self._states)}
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._waiting, errors, deadline, max_init_wait)
                    answers = await self._fetch(everything, errors)
                    tg.cancel_scope.cancel()
                for i in everything:
                    self._account(i, errors.get(i))
                if not errors:
                    validating = True
                    outcome = await self._apply_answers(answers)
                    error = outcome.result.error
                    if isinstance(error, ValidationError):
                        raise InitialValidationError(error) from error
                    if error is not None:
                        raise InitialLoadError([error]) from error
                    self.schedule.started(self.clock.now())
                    return
                fatal = [e for e in errors.values() if not getattr(e, "transient", False)]
                if fatal:
                    raise InitialLoadError(fatal) from fatal[0]
                attempt += 1
                # Real time, not the injected clock: max_init_wait is real time too. A server
                # that asked for a pause (Retry-After) gets it; if that is past max_init_wait,
                # there is no attempt left: give up now (the cache, if any, serves, and the
                # background's first retry waits the pause out).
                delay = backoff_delay(attempt, BACKOFF_BASE / 4, 1.0, self.rng)
                asked = [w for e in errors.values() if (w := getattr(e, "retry_after", None))]
                pause = max([delay, *asked])
                left = max(0.0, deadline - anyio.current_time())
                last = pause >= left
                for i, exc in errors.items():
                    # WARNING for a new failure, INFO for the same one again
                    level = logging.INFO if reported.get(i) == str(exc) else logging.WARNING
                    reported[i] = str(exc)
                    self._states[i].source.logger.log(
                        level,
                        "start-up attempt %d failed: %s; %s %.2fs, %.1fs left of max_init_wait=%gs",
                        attempt,
                        exc,
                        "no attempt left: the next would be in" if last else "next attempt in",
                        pause,
                        left,
                        max_init_wait,
                    )
                if last:
                    break
                await anyio.sleep(pause)
        if validating:
            late = ConfigError("validate= gave no answer before max_init_wait ran out")
            raise InitialLoadError([late], timeout=max_init_wait)
        raise InitialLoadError(list(errors.values()), timeout=max_init_wait)

    async def _waiting(
        self, pending: Mapping[int, Exception], deadline: float, max_init_wait: float
    ) -> None:
        """At start-up, say which sources are slow to answer: after 1 s, then 2, 4, ..."""
        wait = 1.0
        begun = anyio.current_time()
        while True:
            await anyio.sleep(wait)
            waited = anyio.current_time() - begun
            left = max(0.0, deadline - anyio.current_time())
            for i, exc in pending.items():
                if isinstance(exc, _Timeout):  # no answer yet
                    self._states[i].source.logger.info(
                        "start-up: waiting for %s for %.1fs, %.1fs left of max_init_wait=%gs",
                        self._states[i].source.name,
                        waited,
                        left,
                        max_init_wait,
                    )
            wait *= 2

    def _account(self, index: int, error: Exception | None) -> None:
        """Note a source's answer (``error`` None) or failure; log the end of a failure run."""
        now = self.clock.now()
        health = self.health[index]
        if error is not None:
            if health.failing_since is None:
                health.failing_since = now
            health.failures += 1
            health.error = error
            return
        if health.failing_since is not None:
            source = self._states[index].source
            source.logger.info(
                "%s: answering again after %.1fs, %d %s",
                source.name,
                now - health.failing_since,
                health.failures,
                "failure" if health.failures == 1 else "failures",
            )
        health.answered_at = now
        health.failing_since = None
        health.failures = 0
        health.error = None

    # ------------------------------------------------------------------ background

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """The background: applier, notifier, fetcher, and in auto mode the poll loop and the
        watches. Returns only when cancelled (or if a task fails against all expectation)."""
        current_engine.set(self)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._applier, name="aioconfig applier")
            tg.start_soon(self._notifier, name="aioconfig notifier")
            tg.start_soon(self._fetcher, name="aioconfig fetcher")
            if self.mode == "auto":
                if not self._degraded:  # else: once the sources are back (see _resolve)
                    self._start_watches()
                tg.start_soon(self._poll_loop, name="aioconfig poll")
            task_status.started()

    def _start_watches(self) -> None:
        assert self._tg is not None
        if self.mode != "auto":
            return
        for index, state in enumerate(self._states):
            if state.source.can_watch:
                state.watching = True
                name = f"aioconfig watch {state.source.name}"
                self._tg.start_soon(self._watch_loop, index, name=name)

    def stop(self) -> None:
        """Refuse new refreshes and release everyone waiting on a flight (the owner cancels
        the background)."""
        self._stopped = True
        if self._metrics is not None:
            self._metrics.forget(self)
        closed = ClosedError("closed")
        for flight in list(self._unresolved):
            if flight.result is None:
                flight.result = RefreshResult(error=closed, snapshot=self.snapshot)
            flight.ready.set()
            flight.notified.set()
        self._unresolved.clear()
        self._queued.clear()
        self._flight = None

    async def release(self) -> None:
        """Once the background has ended: write the serving snapshot to the cache if the
        notifier had not written it yet (a close right after a swap)."""
        newest = self._to_store
        if newest is not None and self._cache is not None and newest[0].version > self._stored:
            await store(self._cache, self._cache_key, *newest)

    async def aclose_sources(self) -> None:
        for state in self._states:
            try:
                with anyio.move_on_after(_CLOSE_SOURCE_TIMEOUT) as scope:
                    await state.source.aclose()
                if scope.cancelled_caught:
                    logger.warning(
                        "closing source %s took over %gs: left behind",
                        state.source.name,
                        _CLOSE_SOURCE_TIMEOUT,
                    )
            except Exception:
                logger.exception("closing source %s failed", state.source.name)

    # ------------------------------------------------------------------ refresh and flights

    async def refresh(self, force: bool) -> RefreshResult:
        """Refresh every source, or return at once when not due (see ``Config.refresh``)."""
        if self._stopped:
            raise ClosedError("this Config is closed")
        if _applying.get() is self:
            raise RuntimeError(
                "refresh() cannot be awaited inside validate=: it would wait for the very "
                "candidate being validated"
            )
        everything = self._everything
        flight = self._flight
        if flight is None or (force and flight.started):
            if not force and (self.mode == "manual" or not self.schedule.due(self.clock.now())):
                return RefreshResult(snapshot=self.snapshot)
            flight = self._new_flight(everything)
        elif not flight.started and len(flight.indexes) < len(everything):
            flight.indexes.update(everything)
        # From a callback (the notifier's task), wait for the result only: the callbacks of
        # this flight run in that very task, after the one calling.
        inside = current_engine.get() is self
        await (flight.ready if inside else flight.notified).wait()
        result = flight.result
        assert result is not None
        if isinstance(result.error, ClosedError):
            raise ClosedError("the Config was closed during the refresh")
        return result

    def _new_flight(self, indexes: Iterable[int]) -> _Flight:
        flight = _Flight(indexes)
        self._flight = flight
        self._queued.append(flight)
        self._unresolved.add(flight)
        if self._wake is not None:
            self._wake.set()
        return flight

    async def _fetcher(self) -> None:
        """Runs the queued flights' fetches one at a time and hands each to the applier."""
        current_engine.set(self)
        while True:
            while not self._queued:
                self._wake = anyio.Event()
                await self._wake.wait()
            flight = self._queued.popleft()
            flight.started = True
            flight.began = anyio.current_time()
            errors: dict[int, Exception] = {}
            answers = await self._fetch(sorted(flight.indexes), errors)
            await self._inbox.put(_Fetched(flight, answers, errors))

    async def _poll_loop(self) -> None:
        current_engine.set(self)
        while True:
            delay = self.schedule.poll_due - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay)
                continue
            polled = [i for i, state in enumerate(self._states) if not state.watching]
            if not polled:
                self.schedule.succeeded(self.clock.now())
                continue
            flight = self._flight
            if flight is None:
                flight = self._new_flight(polled)
            elif not flight.started:
                flight.indexes.update(polled)
            await flight.ready.wait()  # the applier moves the schedule on

    async def _fetch(
        self, indexes: Iterable[int], errors: dict[int, Exception]
    ) -> dict[int, tuple[int, Payload | NotModified]]:
        """Load the sources at ``indexes`` concurrently: their answers, each with the sequence
        number taken as its fetch began; failures go to ``errors``."""
        answers: dict[int, tuple[int, Payload | NotModified]] = {}

        async def one(i: int) -> None:
            state = self._states[i]
            source = state.source
            self.fetches += 1
            seq = next(self._seq)
            try:
                loaded = await source.load(state.token)
            except SourceUnavailable as exc:
                # An optional source may be missing (a 404, no such file), and may be down
                # before it was ever seen; once seen, a blip (a 503) keeps its last data.
                if not source.optional or (exc.transient and state.data is not None):
                    errors[i] = exc
                    self._count_fetch(source, "failed")
                    return
                loaded = (
                    NotModified(state.token)
                    if state.token == _MISSING_TOKEN
                    else Payload({}, _MISSING_TOKEN)
                )
            except SourceError as exc:
                errors[i] = exc
                self._count_fetch(source, "failed")
                return
            except Exception as exc:  # a bug or an unexpected failure inside a source
                # The exception's text stays out of the message (it may quote anything, secrets
                # included); it is chained for whoever logs the traceback.
                wrapped = SourceError(
                    source.name, f"unexpected {type(exc).__name__}", transient=True
                )
                wrapped.__cause__ = exc
                errors[i] = wrapped
                self._count_fetch(source, "failed")
                return
            errors.pop(i, None)
            answers[i] = (seq, loaded)
            self._count_fetch(source, "data" if isinstance(loaded, Payload) else "not_modified")

        indexes = list(indexes)
        if len(indexes) == 1:
            await one(indexes[0])
        else:
            async with anyio.create_task_group() as tg:
                for i in indexes:
                    tg.start_soon(one, i)
        return answers

    def _count_fetch(self, source: Source, outcome: str) -> None:
        if self._metrics is not None:
            attributes = {"config": self.metric_name, "source": source.name, "outcome": outcome}
            self._metrics.fetches.add(1, attributes)

    async def _watch_loop(self, index: int) -> None:
        current_engine.set(self)
        state = self._states[index]
        failures = 0

        async def emit(item: Payload | SourceError) -> None:
            nonlocal failures
            if isinstance(item, Payload):
                failures = 0
            await self._inbox.put(_Pushed(index, next(self._seq), item))

        while True:
            state.watching = True
            token = None if state.token == _MISSING_TOKEN else state.token
            try:
                await state.source.watch(token, emit)
                raise SourceUnavailable(state.source.name, "watch ended")
            except Exception as exc:
                state.watching = False
                failures += 1
                asked = getattr(exc, "retry_after", None) or 0.0  # a pause the server asked for
                if failures > 1:
                    # Reported once: while the watch is down the poll loop covers the source
                    # (and reports its failures), so attempts to reopen it stay quiet.
                    logger.debug("reopening the watch of %s failed: %s", state.source.name, exc)
                else:
                    if not isinstance(exc, ConfigError):
                        problem = f"watch failed: {type(exc).__name__}"
                        wrapped = SourceError(state.source.name, problem, transient=True)
                        wrapped.__cause__ = exc
                        exc = wrapped
                    await self._inbox.put(_WatchDown(index, exc))
            await self.clock.sleep(max(self.schedule.backoff(failures), asked))

    # ------------------------------------------------------------------ the applier

    async def _applier(self) -> None:
        """The one writer: every new version, from wherever it came, is applied here."""
        current_engine.set(self)
        _applying.set(self)
        while True:
            await self._apply_one(await self._inbox.get())  # holds no message while waiting

    async def _apply_one(self, message: _Message) -> None:
        try:
            await self._handle(message)
        except Exception as exc:  # a bug must cost one message, never the background
            self.engine_errors += 1
            logger.exception("aioconfig engine error")
            failure = ConfigError(f"refresh crashed: {type(exc).__name__}")
            failure.__cause__ = exc
            if isinstance(message, _Fetched):
                self._resolve(message.flight, _Notice(self._failed(failure)))
            else:
                self._notify(_Notice(self._failed(failure)))

    async def _handle(self, message: _Message) -> None:
        if self._stopped:  # closing: nothing more is swapped in
            return
        if isinstance(message, _Fetched):
            for i in sorted(message.flight.indexes):
                self._account(i, message.errors.get(i))
            if message.errors:
                error = _combine(list(message.errors.values()))
                outcome = _Notice(self._failed(error))
            else:
                outcome = await self._apply_answers(message.answers)
            self._resolve(message.flight, outcome)
        elif isinstance(message, _Pushed):
            self._account(
                message.index, message.item if isinstance(message.item, Exception) else None
            )
            if isinstance(message.item, SourceError):
                self._notify(_Notice(self._failed(message.item)))
            else:
                self._notify(
                    await self._apply_answers({message.index: (message.seq, message.item)})
                )
        else:
            self._notify(_Notice(self._failed(message.error)))

    def _resolve(self, flight: _Flight, notice: _Notice) -> None:
        """A flight's outcome: move the schedule on, set the result, queue its notice."""
        if self._stopped:
            # stop() resolved every flight as closed; an outcome decided after it (a big build
            # or validate= that ended once the Config was closing) must not replace that
            # answer before a waiter, already woken, reads it.
            return
        result = notice.result
        now = self.clock.now()
        if result.error is None:
            if self._failure is not None:
                failures = self.schedule.failures
                logger.info(
                    "configuration refresh succeeded again after %d failed %s",
                    failures,
                    "refresh" if failures == 1 else "refreshes",
                )
                self._failure = None
            self.schedule.succeeded(now)
            if self._degraded:
                self._degraded = False
                logger.info("the sources answered again: the cached configuration is replaced")
                self._start_watches()
        else:
            self.schedule.failed(now, getattr(result.error, "retry_after", None))
        if self._metrics is not None:
            self._metrics.duration.record(
                anyio.current_time() - flight.began,
                {"config": self.metric_name, "outcome": _outcome(result)},
            )
        flight.result = result
        if self._flight is flight:
            self._flight = None
        self._unresolved.discard(flight)
        flight.ready.set()
        notice.flight = flight
        self._notify(notice)

    def _failed(self, error: Exception) -> RefreshResult:
        return RefreshResult(error=error, snapshot=self.snapshot)

    def _stale(self, state: SourceState, seq: int, order: int | None) -> bool:
        """Whether an answer is older than what was applied from its source."""
        if order is not None and state.order is not None:
            return order < state.order
        return seq < state.seq

    async def _apply_answers(
        self, answers: Mapping[int, tuple[int, Payload | NotModified]]
    ) -> _Notice:
        """Drop stale answers; build, check and swap in a candidate from the rest."""
        states = self._states
        updates: dict[int, Payload] = {}
        for i, (seq, answer) in answers.items():
            state = states[i]
            if self._stale(state, seq, answer.order):
                continue
            if isinstance(answer, Payload):
                updates[i] = answer
            else:
                state.token = answer.token
                self._note_order(state, seq, answer.order)
        old = self.snapshot
        if not updates:
            return _Notice(RefreshResult(snapshot=old))
        try:
            # A big one off the loop, awaited: the applier does nothing else meanwhile (one
            # writer) and readers keep the old snapshot. A close waits for the build (the loop
            # is free meanwhile) and swaps nothing (see below).
            build = partial(self.pipeline.candidate, updates, old)
            candidate = await off_loop(self.pipeline.costly(updates, old), build)
        except ConfigError as exc:
            self._count_rejected("validators" if isinstance(exc, ValidationError) else "build")
            return _Notice(self._failed(exc))
        if candidate.snapshot is not None:
            problem = await self._check(candidate.snapshot)
            if problem is not None:
                self._count_rejected("validate")
                return _Notice(self._failed(problem))
        if self._stopped:  # closed while it was built or validated: nothing more is swapped in
            return _Notice(RefreshResult(snapshot=old))
        self.pipeline.commit(updates, candidate)
        for i in updates:
            self._note_order(states[i], answers[i][0], updates[i].order)
        new = candidate.snapshot
        if new is None:  # nothing changed, or held back by a sentinel: committed, not swapped
            return _Notice(RefreshResult(snapshot=old))
        self.snapshot = new
        self._provenance.note(candidate.keys, new)
        self._publish(new)
        if self._metrics is not None and old is not None:
            self._record_propagation(updates)
        keys, flags = candidate.keys, candidate.flags
        event = None if old is None else ChangeEvent(old, new, keys, flags=flags)
        result = RefreshResult(changed=True, keys=keys, snapshot=new, flags=flags)
        return _Notice(result, event, flags=flag_documents(states))

    def _count_rejected(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.rejected.add(1, {"config": self.metric_name, "reason": reason})

    def _record_propagation(self, updates: Mapping[int, Payload]) -> None:
        """Seconds from each change at its source, where the source knows when, to now."""
        assert self._metrics is not None
        now = time.time()
        for i, payload in updates.items():
            if payload.changed_at is not None:
                attributes = {"config": self.metric_name, "source": self._states[i].source.name}
                self._metrics.propagation.record(max(0.0, now - payload.changed_at), attributes)

    def _note_order(self, state: SourceState, seq: int, order: int | None) -> None:
        if order is not None:
            state.order = order
        state.seq = max(state.seq, seq)

    async def _check(self, candidate: Snapshot) -> ConfigError | None:
        """What ``validate=`` says against ``candidate`` (None: accepted)."""
        if self._validate is None:
            return None
        try:
            await _maybe_await(self._validate(candidate))
        except Exception as exc:
            return rejection(exc)
        return None

    def _notify(self, notice: _Notice) -> None:
        """Count the outcome and queue its notice (never blocks: the queue is unbounded)."""
        result = notice.result
        self.refreshes += 1
        if self._metrics is not None:
            attributes = {"config": self.metric_name, "outcome": _outcome(result)}
            self._metrics.refreshes.add(1, attributes)
        error = result.error
        if error is not None:
            failure = (type(error), str(error))
            notice.repeat = failure == self._failure
            self._failure = failure
            if not notice.repeat:
                self.errors += 1
                self.last_error = error
        elif result.changed and result.snapshot is not None:
            self._to_store = (result.snapshot, notice.flags)
        self._notices.put_nowait(notice)

    # ------------------------------------------------------------------ the notifier

    async def _notifier(self) -> None:
        """Cache writes, events and callbacks, one outcome at a time, in version order."""
        current_engine.set(self)
        while True:
            await self._tell_one(await self._notices.get())  # holds no notice while waiting

    async def _tell_one(self, notice: _Notice) -> None:
        try:
            await self._tell(notice)
        except Exception:
            self.engine_errors += 1
            logger.exception("aioconfig engine error")
        finally:
            if notice.flight is not None:
                notice.flight.notified.set()

    async def _tell(self, notice: _Notice) -> None:
        result = notice.result
        if result.error is not None:
            for problem in _each(result.error):
                # On the failing source's logger, if one failed: turned down with its backend
                where = self._logger_for(problem)
                if notice.repeat:
                    where.debug("configuration refresh failed again: %s", problem)
                else:
                    where.warning("configuration refresh failed: %s", problem)
            if notice.repeat:
                return
            snapshot = result.snapshot
            if snapshot is not None:
                self._hub.publish(ChangeEvent(snapshot, snapshot, frozenset(), result.error))
            await _call(self._on_error, result.error, "on_refresh_error")
            return
        event = notice.event
        if event is not None:
            logger.debug(
                "configuration version %d: %d keys changed", event.new.version, len(event.keys)
            )
            self._hub.publish(event)  # first: subscribers never wait for the disk
        if result.changed and result.snapshot is not None and self._cache is not None:
            await store(self._cache, self._cache_key, result.snapshot, notice.flags)
            self._stored = max(self._stored, result.snapshot.version)
        if event is not None:
            await _call(self._on_change, event, "on_change")
        await _call(self._on_success, result, "on_refresh_success")

    def _logger_for(self, error: Exception) -> logging.Logger:
        """The logger of the source that ``error`` names; the engine's own for the others."""
        source = self._by_name.get(error.source) if isinstance(error, SourceError) else None
        return logger if source is None else source.logger


def _outcome(result: RefreshResult) -> str:
    return "failed" if result.error is not None else "changed" if result.changed else "unchanged"


def _each(error: Exception) -> tuple[Exception, ...]:
    """The failures one refresh error stands for: a LoadError's, or the error itself."""
    return error.errors if isinstance(error, LoadError) else (error,)


class _Mailbox(Generic[_T]):
    """A queue between two of the engine's tasks, cheaper than a memory object stream: a hop
    costs one wake-up, with no checkpoint when an item is already there. ``limit`` bounds it
    (``put`` then waits for room); None: unbounded, and ``put_nowait`` never fails."""

    __slots__ = ("_items", "_limit", "_ready", "_room")

    def __init__(self, limit: int | None) -> None:
        self._items: deque[_T] = deque()
        self._limit = limit
        self._ready: anyio.Event | None = None
        self._room: anyio.Event | None = None

    def put_nowait(self, item: _T) -> None:
        self._items.append(item)
        if self._ready is not None:
            self._ready.set()

    async def put(self, item: _T) -> None:
        while self._limit is not None and len(self._items) >= self._limit:
            self._room = anyio.Event()
            await self._room.wait()
        self.put_nowait(item)

    async def get(self) -> _T:
        while not self._items:
            self._ready = anyio.Event()
            try:
                await self._ready.wait()
            finally:
                self._ready = None
        item = self._items.popleft()
        if self._room is not None:
            self._room.set()
            self._room = None
        return item


class _Timeout(SourceUnavailable):
    def __init__(self, source: str) -> None:
        super().__init__(source, "no answer before max_init_wait ran out")


def _combine(errors: list[Exception]) -> Exception:
    return errors[0] if len(errors) == 1 else LoadError(errors)


async def _call(callback: Callback | None, argument: Any, what: str) -> None:
    if callback is None:
        return
    try:
        await _maybe_await(callback(argument))
    except Exception:
        logger.exception("%s callback raised", what)


async def _maybe_await(outcome: object) -> None:
    """Await what a sync-or-async hook returned, if it is awaitable."""
    if inspect.isawaitable(outcome):
        await outcome
