"""``load()``: a configuration described by its sources and options, checked at the call."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _layers
from ._layers import Converter
from ._pipeline import Pipeline, SourceState, WatchKey
from ._secrets import DEFAULT_SECRET_MATCHER, SecretMatcher
from ._validators import Validator
from .flags._user import User
from .sources._base import Source
from .sources._env import Env

if TYPE_CHECKING:
    from ._cache import Cache
    from ._clock import Clock
    from ._config import Config
    from ._engine import Callback, Mode, Validate

__all__ = ("load", "pipeline")

_MODES = ("auto", "lazy", "manual")
DEFAULT_REFRESH_INTERVAL = 30.0


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
    meter_provider: Any = None,
) -> Config:
    """Describe a live configuration; ``await`` it or use it with ``async with`` to start it.

    Later sources override earlier ones: mappings are deep-merged, anything else replaced. A
    ``str`` or ``Path`` means ``File(path)``, or ``Glob(pattern)`` for a pattern
    (``"conf/*.toml"``). ``default_user`` is who feature flags are
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

    ``meter_provider``: an OpenTelemetry ``MeterProvider`` to record metrics into, instead of
    the global one (used when ``opentelemetry-api`` is installed; see the README).
    """
    resolved: list[Source] = []
    for source in sources:
        if isinstance(source, Source):
            resolved.append(source)
        elif isinstance(source, (str, os.PathLike)):
            from .sources._file import File
            from .sources._glob import Glob, has_magic

            path = os.fspath(source)
            if isinstance(path, str) and has_magic(path) and not os.path.exists(path):
                resolved.append(Glob(path))  # "conf/*.toml": every match, sorted, re-globbed
            else:
                resolved.append(File(source))
        else:
            raise TypeError(
                f"load() takes Source objects or file paths, got {type(source).__name__}"
            )
    if not resolved:
        raise TypeError("load() needs at least one source (a file path or a Source)")
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
    if cache is not None:
        from ._cache import Cache

        if not isinstance(cache, Cache):
            raise TypeError(
                f"cache must have async get(key) and set(key, value), got {type(cache).__name__}"
            )
    shape = pipeline(
        resolved,
        env=env,
        environments=environments,
        env_var=env_var,
        case_sensitive=case_sensitive,
        converters=converters,
        validators=validators,
        models=models,
        refresh_on=refresh_on,
        default_user=default_user,
        secret_patterns=secret_patterns,
    )
    for name, callback in (
        ("validate", validate),
        ("on_change", on_change),
        ("on_refresh_success", on_refresh_success),
        ("on_refresh_error", on_refresh_error),
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable, got {type(callback).__name__}")
    # Here, not at the top: the engine brings anyio and asyncio, which a one-shot read of local
    # files (the command line) does without.
    from ._clock import SystemClock
    from ._config import Config

    return Config(
        shape,
        refresh_interval=float(refresh_interval),
        jitter=float(jitter),
        mode=mode,
        max_init_wait=float(max_init_wait),
        validate=validate,
        on_change=on_change,
        on_refresh_success=on_refresh_success,
        on_refresh_error=on_refresh_error,
        clock=SystemClock() if clock is None else clock,
        rng=random.Random(seed),
        cache=cache,
        meter_provider=meter_provider,
    )


def pipeline(
    sources: Sequence[Source],
    *,
    env: str | None = None,
    environments: bool = False,
    env_var: str | None = None,
    case_sensitive: bool = True,
    converters: Mapping[str, Converter] | None = None,
    validators: Iterable[Validator] = (),
    models: Iterable[type] = (),
    refresh_on: Iterable[WatchKey | str] = (),
    default_user: User | None = None,
    secret_patterns: Iterable[str] | None = None,
) -> Pipeline:
    """The candidate pipeline over ``sources`` that ``load()``'s options of the same names
    describe, each checked: the one place they are read, for the engine and for the command
    line's one-shot reads alike."""
    environment = _environment(sources, env, env_var)
    table = _layers.converters(converters)  # checks the names now, not at the first load
    if default_user is not None and not isinstance(default_user, User):
        raise TypeError(
            f"default_user must be an aioconfig.flags.User, got {type(default_user).__name__}"
        )
    return Pipeline(
        [SourceState(source) for source in sources],
        environment=environment,
        environments=environments,
        fold_case=not case_sensitive,
        table=table,
        validators=_checked_validators(validators),
        models=tuple(models),
        refresh_on=tuple(w if isinstance(w, WatchKey) else WatchKey(w) for w in refresh_on),
        default_user=default_user,
        secret=DEFAULT_SECRET_MATCHER
        if secret_patterns is None
        else SecretMatcher(secret_patterns),
    )


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
