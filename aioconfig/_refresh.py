"""The refresh engine: fetch, build a candidate, validate, swap, tell subscribers.

Schedule (all delays come from the injected Clock):

* poll: after a good refresh, wait ``refresh_interval * uniform(1 - jitter, 1 + jitter)``;
* backoff: after the n-th failure in a row, wait ``uniform(0, min(cap, base * 2 ** (n - 1)))``
  ("full jitter"), with ``base = 1 s`` and ``cap = refresh_interval``, so a failing source is
  retried sooner than the normal interval and never later; the count resets after a success;
* push: a source that can watch is watched instead of polled; if its watch fails it is polled
  until the watch, reopened after a backoff, is back.

Single flight: a refresh runs in the engine's own task group; every caller that arrives while
it runs waits for that one and gets its result, so N concurrent callers cause one fetch per
source, and a caller that is cancelled does not cancel the fetch others are waiting for.

Writers (refreshes and pushes) take one lock to build-validate-swap; readers never lock.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.abc

from . import _cache
from ._clock import Clock
from ._events import ChangeEvent, Hub, key_matches
from ._exceptions import (
    ClosedError,
    ConfigError,
    InitialLoadError,
    LoadError,
    SourceError,
    SourceUnavailable,
    ValidationError,
)
from ._history import HistoryEntry
from ._layers import (
    MISSING,
    Converter,
    Layer,
    interpolate,
    lookup,
    prepare,
    resolve_tokens,
    section_of,
)
from ._layers import converters as _layers_converters
from ._merge import Memo, build, patch, thaw
from ._secrets import DEFAULT_SECRET_MATCHER, MASK
from ._snapshot import FoldedIndex, Snapshot
from ._validators import Validator, error_for, run_validators
from .flags._combine import EMPTY, changed_keys, combine
from .flags._model import FlagConfig, parse_flags
from .flags._user import User
from .sources._base import NotModified, Payload, Source

__all__ = ("Engine", "RefreshResult", "WatchKey", "backoff_delay", "jittered")

logger = logging.getLogger("aioconfig")

Mode = Literal["auto", "lazy", "manual"]
Callback = Callable[[Any], "Awaitable[None] | None"]
Validate = Callable[[Snapshot], "Awaitable[None] | None"]

BACKOFF_BASE = 1.0
DEFAULT_ENVIRONMENT = "development"  # Dynaconf's too
_MISSING_TOKEN = ("aioconfig:optional-source-missing",)


@dataclass(frozen=True, slots=True)
class WatchKey:
    """A sentinel key: with ``refresh_on=[WatchKey("sentinel")]`` other changes wait for it."""

    key: str


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


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """``interval`` spread uniformly by ``±jitter`` (a fraction): a fleet must not poll in step."""
    if jitter == 0:
        return interval
    return interval * (1.0 + rng.uniform(-jitter, jitter))


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff after ``failures`` consecutive failures (1, 2, ...)."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return rng.uniform(0.0, ceiling)


@dataclass(slots=True)
class _SourceState:
    source: Source
    token: Hashable | None = None
    data: Any = None
    layer: Layer | None = None  # ``data`` prepared: environment, case, casts, tokens
    flags: FlagConfig | None = None
    watching: bool = False
    pushes: int = 0  # versions applied from the watch; a poll that began earlier is stale


@dataclass(slots=True)
class _Flight:
    done: anyio.Event = field(default_factory=anyio.Event)
    result: RefreshResult | None = None


class Engine:
    """Owns the sources' state and produces snapshots; the Config owns the engine."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        publish: Callable[[Snapshot], None],
        hub: Hub,
        refresh_interval: float,
        jitter: float,
        mode: Mode,
        refresh_on: Sequence[WatchKey],
        validate: Validate | None,
        on_change: Callback | None,
        on_refresh_success: Callback | None,
        on_refresh_error: Callback | None,
        clock: Clock,
        rng: random.Random,
        cache: _cache.Cache | None = None,
        default_user: User | None = None,
        environment: str | None = None,
        environments: bool = False,
        fold_case: bool = False,
        converters: Mapping[str, Converter] | None = None,
        validators: Sequence[Validator] = (),
        models: Sequence[type] = (),
        secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    ) -> None:
        self._states = [_SourceState(source) for source in sources]
        self._secret = secret
        self._models = tuple(models)
        self._validators = tuple(validators)
        self._introduced: dict[str, int] = {}  # key -> the version its value came in
        self._memo = Memo()  # sections merged from several layers, for the next build
        #: The active environment (``load(env=...)``), and whether files have sections for it
        #: unless they say otherwise (``File(environments=...)``).
        self.environment = environment or DEFAULT_ENVIRONMENT
        self._environments = environments
        self._fold_case = fold_case
        self._table = _layers_converters(converters)
        self._cache = cache
        self._cache_key = _cache.cache_key([source.name for source in sources])
        # Started from the cache: every source is polled until one full refresh succeeds.
        self._degraded = False
        self._publish = publish
        self._hub = hub
        self.interval = refresh_interval
        self.jitter = jitter
        self.mode = mode
        self._sentinels = tuple(w.key for w in refresh_on)
        self._default_user = default_user
        self._validate = validate
        self._on_change = on_change
        self._on_success = on_refresh_success
        self._on_error = on_refresh_error
        self.clock = clock
        self.rng = rng
        # Never wait longer than a poll would; with no interval (lazy or manual), 1 s.
        self.backoff_cap = refresh_interval or BACKOFF_BASE
        self.snapshot: Snapshot | None = None
        self._lock = anyio.Lock()
        self._flight: _Flight | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._not_before = -float("inf")
        self._poll_due = -float("inf")
        self.failures = 0  # consecutive failed refreshes
        # statistics
        self.fetches = 0
        self.refreshes = 0
        self.errors = 0
        self.last_error: Exception | None = None

    @property
    def sources(self) -> tuple[Source, ...]:
        return tuple(state.source for state in self._states)

    # ------------------------------------------------------------------ start-up

    async def initial_load(self, max_init_wait: float) -> None:
        """Build the first good snapshot; retry transient failures for up to ``max_init_wait``.

        With a cache, a start-up that fails for any reason starts from the cached snapshot
        instead, if there is a usable one.
        """
        try:
            await self._initial_load(max_init_wait)
        except InitialLoadError as exc:
            if self._cache is None or not await self._start_from_cache(exc):
                raise
            return
        if self._cache is not None and self.snapshot is not None:
            await self._store(self.snapshot)

    async def _start_from_cache(self, error: InitialLoadError) -> bool:
        assert self._cache is not None
        where = repr(self._cache)
        try:
            raw = await self._cache.get(self._cache_key)
        except Exception as exc:
            logger.warning("reading the cache %s failed: %s: %s", where, type(exc).__name__, exc)
            return False
        if raw is None:
            return False
        entry = _cache.decode(raw, key=self._cache_key, where=where)
        if entry is None:
            return False
        root, flat, _ = build([entry.data])
        try:
            built = self._validated(_Built(root, flat, frozenset(), {}, frozenset()), None)
            root, flat = built.root, built.flat
        except ValidationError as exc:
            logger.warning("ignoring the cache %s: rejected by the validators: %s", where, exc)
            return False
        if self._fold_case:
            flat = FoldedIndex(flat)
        try:
            restored = {
                index: parse_flags(document, source=self._states[index].source.name)
                for index, document in entry.flags
                if 0 <= index < len(self._states)
            }
        except ConfigError as exc:
            logger.warning("ignoring the cache %s: its flags do not parse: %s", where, exc)
            return False
        snapshot = Snapshot(
            root,
            flat,
            version=1,
            sources=tuple(state.source.name for state in self._states),
            created_at=entry.created_at,
            from_cache=True,
            flags=self._combined(restored),
            default_user=self._default_user,
            secret_matcher=self._secret,
        )
        rejection = await self._rejection(snapshot)
        if rejection is not None:
            logger.warning("ignoring the cache %s: rejected by validate: %s", where, rejection)
            return False
        logger.warning(
            "starting from the cached configuration of %s (%d keys left out as secrets); "
            "retrying the sources: %s",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created_at)),
            len(entry.omitted),
            error,
        )
        self.snapshot = snapshot
        self._publish(snapshot)
        self._degraded = True
        self.last_error = error
        self._scheduled(success=False)
        return True

    async def _store(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` to the cache; a failure is logged, never raised."""
        if self._cache is None:
            return
        try:
            value = _cache.encode(
                snapshot.to_dict(),
                key=self._cache_key,
                version=snapshot.version,
                sources=snapshot.sources,
                store_secrets=bool(getattr(self._cache, "store_secrets", False)),
                is_secret=snapshot.is_secret,
                flags=[
                    (index, state.flags.document)
                    for index, state in enumerate(self._states)
                    if state.flags is not None and state.flags.document is not None
                ],
            )
            await self._cache.set(self._cache_key, value)
        except Exception as exc:
            logger.warning(
                "writing the cache %r failed: %s: %s", self._cache, type(exc).__name__, exc
            )

    async def _initial_load(self, max_init_wait: float) -> None:
        pending: dict[int, Exception] = {}
        attempt = 0
        with anyio.move_on_after(max_init_wait):
            while True:
                pending = {i: _Timeout(s.source.name) for i, s in enumerate(self._states)}
                results = await self._fetch(self._states, pending)
                if not pending:
                    outcome, _ = await self._apply(results)
                    if outcome.error is not None:
                        raise InitialLoadError([outcome.error]) from outcome.error
                    self._scheduled(success=True)
                    if self.jitter:
                        # The first poll lands anywhere in the first interval: a fleet that
                        # restarts together (a deploy) spreads out at once, not over hours.
                        self._poll_due = self.clock.now() + self.rng.uniform(0, self.interval)
                    return
                fatal = [e for e in pending.values() if not getattr(e, "transient", False)]
                if fatal:
                    raise InitialLoadError(fatal) from fatal[0]
                attempt += 1
                # Real time, not the injected clock: max_init_wait is real time too.
                await anyio.sleep(backoff_delay(attempt, BACKOFF_BASE / 4, 1.0, self.rng))
        raise InitialLoadError(list(pending.values()), timeout=max_init_wait)

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the background work in ``tg`` (the Config's): watches and the poll loop."""
        self._tg = tg
        if self.mode != "auto":
            return
        if not self._degraded:  # else: once the sources are back (see _run_flight)
            self._start_watches()
        tg.start_soon(self._poll_loop, name="aioconfig poll")

    def _start_watches(self) -> None:
        assert self._tg is not None
        if self.mode != "auto":
            return
        for state in self._states:
            if state.source.can_watch:
                state.watching = True
                name = f"aioconfig watch {state.source.name}"
                self._tg.start_soon(self._watch_loop, state, name=name)

    # ------------------------------------------------------------------ refresh

    async def refresh(self, force: bool) -> RefreshResult:
        """Refresh every source, or return at once when not due (see ``Config.refresh``)."""
        if not force and self._flight is None:  # a refresh in flight is always joined
            if self.mode == "manual" or self.clock.now() < self._not_before:
                return RefreshResult(snapshot=self.snapshot)
        return await self._shared(self._states)

    async def _shared(self, states: list[_SourceState]) -> RefreshResult:
        flight = self._flight
        if flight is None:
            if self._tg is None:
                raise ClosedError("this Config is not open")
            flight = self._flight = _Flight()
            self._tg.start_soon(self._run_flight, flight, states, name="aioconfig refresh")
        await flight.done.wait()
        assert flight.result is not None
        if isinstance(flight.result.error, ClosedError):
            raise ClosedError("the Config was closed during the refresh")
        return flight.result

    async def _run_flight(self, flight: _Flight, states: list[_SourceState]) -> None:
        try:
            errors: dict[int, Exception] = {}
            event: ChangeEvent | None = None
            try:
                results = await self._fetch(states, errors)
                if errors:
                    error = _combine(list(errors.values()))
                    result = RefreshResult(error=error, snapshot=self.snapshot)
                elif results:
                    result, event = await self._apply(results)
                else:
                    result = RefreshResult(snapshot=self.snapshot)
            except Exception as exc:  # a bug must cost one refresh, never the background work
                logger.exception("configuration refresh crashed")
                failure = ConfigError(f"refresh crashed: {type(exc).__name__}: {exc}")
                failure.__cause__ = exc
                result = RefreshResult(error=failure, snapshot=self.snapshot)
            self._scheduled(success=result.error is None)
            if result.error is None and self._degraded:
                self._degraded = False
                logger.info("the sources answered again: the cached configuration is replaced")
                if self._tg is not None:
                    self._start_watches()
            flight.result = result
            await self._report(result, event)
        finally:
            if flight.result is None:
                flight.result = RefreshResult(error=ClosedError("closed"), snapshot=self.snapshot)
            self._flight = None
            flight.done.set()

    async def _fetch(
        self, states: Sequence[_SourceState], errors: dict[int, Exception]
    ) -> _Fetched:
        """Load ``states`` concurrently. Returns new payloads; records failures in ``errors``."""
        results = _Fetched()
        index = {id(state): i for i, state in enumerate(self._states)}

        async def one(state: _SourceState) -> None:
            i = index[id(state)]
            source = state.source
            self.fetches += 1
            pushes = results.pushes[i] = state.pushes
            try:
                loaded = await source.load(state.token)
            except SourceUnavailable as exc:
                # An optional source may be missing (a 404, no such file), and may be down
                # before it was ever seen; once seen, a blip (a 503) keeps its last data.
                if not source.optional or (exc.transient and state.data is not None):
                    errors[i] = exc
                    return
                loaded = (
                    NotModified(state.token)
                    if state.token == _MISSING_TOKEN
                    else Payload({}, _MISSING_TOKEN)
                )
            except SourceError as exc:
                errors[i] = exc
                return
            except Exception as exc:  # a bug or an unexpected failure inside a source
                # The exception's text stays out of the message (it may quote anything, secrets
                # included); it is chained for whoever logs the traceback.
                wrapped = SourceError(
                    source.name, f"unexpected {type(exc).__name__}", transient=True
                )
                wrapped.__cause__ = exc
                errors[i] = wrapped
                return
            errors.pop(i, None)
            if isinstance(loaded, Payload):
                results[i] = loaded
            elif state.pushes == pushes:
                state.token = loaded.token

        if len(states) == 1:
            await one(states[0])
        else:
            async with anyio.create_task_group() as tg:
                for state in states:
                    tg.start_soon(one, state)
        return results

    async def _apply(
        self, updates: dict[int, Payload], *, pushed: bool = False
    ) -> tuple[RefreshResult, ChangeEvent | None]:
        """Build a candidate from ``updates`` over the current data; validate; swap."""
        async with self._lock:
            old = self.snapshot
            if isinstance(updates, _Fetched):
                # A watch may have applied a newer version while this poll was on its way:
                # the polled copy would roll it back.
                for i in [i for i in updates if updates.pushes[i] != self._states[i].pushes]:
                    del updates[i]
                if not updates:
                    return RefreshResult(snapshot=old), None
            try:
                prepared = {i: self._prepare(i, payload) for i, payload in updates.items()}
                built = self._build(prepared, old)
                root, flat, keys = built.root, built.flat, built.keys
            except ConfigError as exc:  # a failed cast, a bad template: the candidate is bad
                return RefreshResult(error=exc, snapshot=old), None
            flags = self._combined(
                {
                    i: updates[i].flags if i in updates else state.flags
                    for i, state in enumerate(self._states)
                },
                None if old is None else old.flags,
            )
            flag_keys = changed_keys(EMPTY if old is None else old.flags, flags)
            if old is not None and not old.from_cache:
                # Sentinels: hold the settings back until a watched key (or one under it)
                # changes. Flags are not held: a flag document is one consistent version.
                if self._sentinels and not any(key_matches(k, self._sentinels) for k in keys):
                    root, flat, keys = old._data, old._flat, frozenset()
                    built = _Built(root, flat, keys, old._derived, old._secret_keys)
                if not keys and not flag_keys:
                    # Nothing to swap (yet): remember the data, so a later sentinel change or
                    # refresh applies it, and move on.
                    self._commit(updates, prepared, pushed)
                    return RefreshResult(snapshot=old), None

            candidate = Snapshot(
                root,
                FoldedIndex(flat) if self._fold_case else flat,
                version=1 if old is None else old.version + 1,
                sources=tuple(state.source.name for state in self._states),
                flags=flags,
                default_user=self._default_user,
                secret_keys=built.secrets,
                derived=built.derived,
                secret_matcher=self._secret,
            )
            rejection = await self._rejection(candidate)
            if rejection is not None:
                return RefreshResult(error=rejection, snapshot=old), None

            self._commit(updates, prepared, pushed)
            self.snapshot = candidate
            self._introduce(keys, candidate)
            self._publish(candidate)
            event = None
            if old is not None:
                event = ChangeEvent(old, candidate, keys, flags=flag_keys)
                self._hub.publish(event)
            result = RefreshResult(changed=True, keys=keys, snapshot=candidate, flags=flag_keys)
            return result, event

    def _combined(
        self, flags: Mapping[int, FlagConfig | None], previous: FlagConfig | None = None
    ) -> FlagConfig:
        """The sources' flags as one FlagConfig (``previous`` when none of them changed)."""
        if previous is not None and all(
            flags.get(i) is state.flags for i, state in enumerate(self._states)
        ):
            return previous
        return combine(
            [
                (config, self._states[i].source.flag_behaviour)
                for i, config in sorted(flags.items())
                if config is not None
            ]
        )

    async def _rejection(self, candidate: Snapshot) -> ValidationError | None:
        """What ``models=`` and ``validate=`` say against ``candidate`` (None: accepted)."""
        for model in self._models:
            try:
                candidate.bind(model)  # kept on the candidate: bind() is ready when it serves
            except ValidationError as exc:
                return exc
        if self._validate is None:
            return None
        try:
            await _maybe_await(self._validate(candidate))
        except ValidationError as exc:
            return exc
        except Exception as exc:
            error = ValidationError(f"candidate rejected: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return error
        return None

    def _prepare(self, index: int, payload: Payload) -> Layer:
        source = self._states[index].source
        sections = source.environments
        if sections is None:
            sections = self._environments
        return prepare(
            payload.data,
            source.name,
            environment=self.environment if sections else None,
            fold_case=self._fold_case,
            table=self._table,
            describe=source.describe,
            secret=self._secret,
        )

    def _build(self, prepared: dict[int, Layer], old: Snapshot | None) -> _Built:
        """Merge the prepared layers over the current ones; fill in ``@format`` templates;
        run the validators."""
        layers = [
            prepared[i] if i in prepared else state.layer or _NO_LAYER
            for i, state in enumerate(self._states)
        ]
        if any(layer.tokens for layer in layers):
            data = resolve_tokens(layers)
        else:
            data = [layer.data for layer in layers]
        previous = None if old is None else (old._data, old._flat)
        root, flat, keys = build(data, previous, self._memo)
        derived: dict[str, str] = {}
        formats = {key: spec for layer in layers for key, spec in layer.formats.items()}
        if formats:
            values = interpolate(flat, formats, self._table)
            if values:
                changed = set(keys)
                root = patch(root, flat, values, changed, None if old is None else old._flat)
                keys = frozenset(changed)
                derived.update((key, "@format " + formats[key].template) for key in values)
        secrets = frozenset().union(*(layer.secrets for layer in layers))
        built = _Built(root, flat, keys, derived, secrets)
        return self._validated(built, old)

    def _validated(self, built: _Built, old: Snapshot | None) -> _Built:
        """Run ``load(validators=...)``: apply their defaults and casts, or raise every failure."""
        if not self._validators:
            return built
        secret, given = self._secret, built.secrets
        outcome = run_validators(
            self._validators,
            built.flat,
            env=self.environment,
            secret=lambda key: key in given or secret(key),
        )
        error = error_for(outcome)
        if error is not None:
            raise error
        if not outcome.patch:
            return built
        changed = set(built.keys)
        old_flat = None if old is None else old._flat
        root = patch(built.root, built.flat, outcome.patch, changed, old_flat)
        derived = {**built.derived, **dict.fromkeys(outcome.patch, "validators")}
        return _Built(root, built.flat, frozenset(changed), derived, built.secrets)

    def _introduce(self, keys: frozenset[str], snapshot: Snapshot) -> None:
        """Note the version each changed key got its value in (for ``history``)."""
        introduced = self._introduced
        flat = snapshot._flat
        for key in keys:
            if key in flat:
                introduced[key] = snapshot.version
            else:
                introduced.pop(key, None)

    def history(self, key: str, *, reveal: bool) -> list[HistoryEntry]:
        """Every layer that sets ``key``, highest precedence first (see ``Config.history``)."""
        snapshot = self.snapshot
        if snapshot is None:
            return []
        if self._fold_case:
            key = key.lower()
        path = tuple(key.split("."))
        secret = not reveal and snapshot.is_secret(key)
        entries: list[HistoryEntry] = []
        version = self._introduced.get(key, 1 if snapshot.from_cache else None)
        current = snapshot._flat.get(key, _UNSET)

        def shown(value: Any) -> Any:
            return MASK if secret else thaw(value)

        how = snapshot._derived.get(key)
        if how is not None and current is not _UNSET:
            origin = how if not how.startswith("@format") or not secret else "@format"
            kind = "validators" if how == "validators" else "@format"
            entries.append(HistoryEntry(key, shown(current), kind, kind, origin, version, True))
        for state in reversed(self._states):
            layer = state.layer
            if layer is None:
                continue
            value = lookup(layer.data, path)
            if value is MISSING:
                continue
            source = state.source
            origin = source.describe(path) or source.name
            sections = source.environments
            if sections is None:
                sections = self._environments
            if sections and isinstance(state.data, Mapping):
                origin += f" [{section_of(state.data, self.environment, path) or '?'}]"
            serving = not entries
            kind = type(source).__name__.lower()  # file, env, http, etcd, static, ...
            since = version if serving else None
            entries.append(
                HistoryEntry(key, shown(value), kind, source.name, origin, since, serving)
            )
        if not entries and current is not _UNSET:  # from the cache, with no source answering yet
            entries.append(
                HistoryEntry(key, shown(current), "cache", "cache", "cache", version, True)
            )
        return entries

    def _commit(
        self, updates: dict[int, Payload], prepared: dict[int, Layer], pushed: bool
    ) -> None:
        for i, payload in updates.items():
            state = self._states[i]
            state.data = payload.data
            state.layer = prepared[i]
            state.flags = payload.flags
            state.token = payload.token
            if pushed:
                state.pushes += 1

    def _scheduled(self, *, success: bool) -> None:
        now = self.clock.now()
        if success:
            self.failures = 0
            self._not_before = now + self.interval
            self._poll_due = now + jittered(self.interval, self.jitter, self.rng)
        else:
            self.failures += 1
            delay = backoff_delay(self.failures, BACKOFF_BASE, self.backoff_cap, self.rng)
            self._not_before = now + delay
            self._poll_due = now + delay

    async def _report(self, result: RefreshResult, event: ChangeEvent | None = None) -> None:
        """Tell the callbacks (outside the lock); a failing callback is logged, never raised."""
        self.refreshes += 1
        if result.error is not None:
            self.errors += 1
            self.last_error = result.error
            logger.warning("configuration refresh failed: %s", result.error)
            snapshot = self.snapshot
            if snapshot is not None:
                self._hub.publish(ChangeEvent(snapshot, snapshot, frozenset(), result.error))
            await _call(self._on_error, result.error, "on_refresh_error")
            return
        if event is not None:
            logger.debug(
                "configuration version %d: %d keys changed", event.new.version, len(event.keys)
            )
            await self._store(event.new)
            await _call(self._on_change, event, "on_change")
        await _call(self._on_success, result, "on_refresh_success")

    # ------------------------------------------------------------------ background loops

    async def _poll_loop(self) -> None:
        while True:
            delay = self._poll_due - self.clock.now()
            if delay > 0:
                await self.clock.sleep(delay)
                continue
            polled = [state for state in self._states if not state.watching]
            if polled:
                await self._shared(polled)  # never raises but for ClosedError on shutdown
            else:
                self._scheduled(success=True)

    async def _watch_loop(self, state: _SourceState) -> None:
        failures = 0
        index = self._states.index(state)

        async def emit(payload: Payload | SourceError) -> None:
            nonlocal failures
            if isinstance(payload, SourceError):
                await self._report(RefreshResult(error=payload, snapshot=self.snapshot))
                return
            failures = 0
            result, event = await self._apply({index: payload}, pushed=True)
            await self._report(result, event)

        while True:
            state.watching = True
            token = None if state.token == _MISSING_TOKEN else state.token
            try:
                await state.source.watch(token, emit)
                raise SourceUnavailable(state.source.name, "watch ended")
            except Exception as exc:
                state.watching = False
                failures += 1
                if failures > 1:
                    # Reported once: while the watch is down the poll loop covers the source
                    # (and reports its failures), so attempts to reopen it stay quiet.
                    logger.debug("reopening the watch of %s failed: %s", state.source.name, exc)
                elif isinstance(exc, ConfigError):
                    await self._report(RefreshResult(error=exc, snapshot=self.snapshot))
                else:
                    problem = f"watch failed: {type(exc).__name__}: {exc}"
                    error = SourceError(state.source.name, problem, transient=True)
                    await self._report(RefreshResult(error=error, snapshot=self.snapshot))
            delay = backoff_delay(failures, BACKOFF_BASE, self.backoff_cap, self.rng)
            await self.clock.sleep(delay)

    def stop(self) -> None:
        """Refuse new refreshes; the owner cancels the work already running."""
        self._tg = None

    async def aclose_sources(self) -> None:
        for state in self._states:
            try:
                await state.source.aclose()
            except Exception:
                logger.exception("closing source %s failed", state.source.name)


_NO_LAYER = Layer({})
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class _Built:
    """A candidate's tree, index and changed keys, and what was decided after the merge."""

    root: Mapping[str, Any]
    flat: dict[str, Any]
    keys: frozenset[str]
    derived: Mapping[str, str]  # key -> "@format <template>" or "validators"
    secrets: frozenset[str]  # keys given as Secret(...)


class _Fetched(dict[int, Payload]):
    """Payloads from a poll, with each source's push count when its load began."""

    def __init__(self) -> None:
        super().__init__()
        self.pushes: dict[int, int] = {}


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
