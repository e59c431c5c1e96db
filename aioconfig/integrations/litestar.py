"""Litestar integration: the Config opened by the app's lifespan, a Snapshot per request as a
dependency.

```python
from litestar import Litestar, get
from litestar.di import NamedDependency

from aioconfig import Snapshot
from aioconfig.integrations.litestar import config_dependencies, config_lifespan


@get("/")
async def index(snapshot: NamedDependency[Snapshot]) -> dict[str, object]:
    return {"version": snapshot.version, "db": snapshot["db.host"]}


app = Litestar(
    [index],
    lifespan=[config_lifespan("settings.toml", refresh_interval=10)],
    dependencies=config_dependencies(),
)
```

The lifespan puts the Config in ``app.state.config``. Litestar resolves a dependency once per
request, so every handler and dependency that takes ``snapshot`` in one request gets the same
snapshot; ``config`` is the live Config, for ``refresh()`` and ``changes()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from .._extras import needs

with needs("litestar", "litestar", by=__name__):
    from litestar.datastructures import State
    from litestar.di import Provide

from .._config import Config
from .._exceptions import ConfigError
from .._load import load
from .._snapshot import Snapshot
from ..sources._base import Source

__all__ = ("config_dependencies", "config_lifespan")

_STATE_KEY = "config"


def config_lifespan(
    *sources: Source | str | os.PathLike[str],
    config: Config | None = None,
    state_key: str = _STATE_KEY,
    **load_options: Any,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan entry (``Litestar(lifespan=[...])``) that runs a Config while the app runs.

    ``config_lifespan(*sources, **load_options)`` loads at each start and closes at shutdown;
    startup fails with the real error. ``config_lifespan(config=c)`` uses a Config you made,
    opened here (and closed at shutdown) unless it is open already. The Config goes in
    ``app.state.<state_key>``.
    """
    if config is not None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config made by load(), got {type(config).__name__}")
        if sources or load_options:
            raise TypeError("pass either sources and load() options, or config=, not both")
    else:
        load(*sources, **load_options)  # a mistake in the options fails here, not at startup

    def lifespan(app: Any) -> _Lifespan:
        running = load(*sources, **load_options) if config is None else config
        return _Lifespan(app, running, state_key)

    return lifespan


class _Lifespan:
    """One run of the app. ``await`` opens the Config in a host task of its own, so nothing
    here holds a task group open between entering and leaving."""

    def __init__(self, app: Any, config: Config, state_key: str) -> None:
        self._app = app
        self._config = config
        self._state_key = state_key
        self._owned = False

    async def __aenter__(self) -> None:
        if self._config.statistics().state != "opened":
            self._owned = True
            await self._config
        self._app.state[self._state_key] = self._config

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owned:
            await self._config.aclose()


def config_dependencies(
    *, config: str = "config", snapshot: str = "snapshot", state_key: str = _STATE_KEY
) -> dict[str, Provide]:
    """Dependencies for ``Litestar(dependencies=...)``: the live Config as ``config`` and the
    request's snapshot as ``snapshot`` (resolved once per request, so one version throughout)."""

    async def provide_config(state: State) -> Config:
        found = state.get(state_key)
        if isinstance(found, Config):
            return found
        raise ConfigError(
            f"no aioconfig Config in app.state.{state_key}: start it with the app, e.g. "
            "Litestar(lifespan=[config_lifespan('settings.toml')])"
        )

    async def provide_snapshot(state: State) -> Snapshot:
        return (await provide_config(state)).snapshot

    return {config: Provide(provide_config), snapshot: Provide(provide_snapshot)}
