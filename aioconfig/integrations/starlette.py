"""Starlette integration: one live Config per app, one pinned Snapshot per request.

```python
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aioconfig.integrations.starlette import SnapshotMiddleware, config_lifespan, get_snapshot


async def homepage(request: Request) -> JSONResponse:
    snapshot = get_snapshot(request)  # the same version for the whole request
    return JSONResponse({"version": snapshot.version, "db": snapshot["db.host"]})


app = Starlette(
    routes=[Route("/", homepage)],
    lifespan=config_lifespan("settings.toml", refresh_interval=10),
    middleware=[Middleware(SnapshotMiddleware)],
)
```

The lifespan opens the Config when the app starts and closes it when the app stops; the
Config is in ``app.state.config`` and in every request's ``request.state.config``. The
middleware pins ``config.snapshot`` once per request in ``request.state.snapshot``, so a
request never mixes two versions even if a refresh swaps one in while it runs.

FastAPI apps use the same lifespan and middleware; :mod:`aioconfig.integrations.fastapi` has
the dependencies in the form FastAPI runs best.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

from .._extras import needs

with needs("starlette", "starlette", by=__name__):
    from starlette.requests import HTTPConnection
    from starlette.types import ASGIApp, Receive, Scope, Send

from .._config import Config
from .._exceptions import ConfigError
from .._load import load
from .._snapshot import Snapshot
from ..sources._base import Source
from ._azure_push import azure_push_route as azure_push_route
from ._ops import ops_routes as ops_routes

__all__ = (
    "SnapshotMiddleware",
    "azure_push_route",
    "config_lifespan",
    "get_config",
    "get_snapshot",
    "ops_routes",
)

_STATE_KEY = "config"
_SNAPSHOT_KEY = "snapshot"

# A user's lifespan: ``lifespan(app)`` is an async context manager yielding state or None.
_UserLifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


def config_lifespan(
    *sources: Source | str | os.PathLike[str],
    config: Config | None = None,
    state_key: str = _STATE_KEY,
    lifespan: _UserLifespan | None = None,
    **load_options: Any,
) -> Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any]]]:
    """A lifespan that runs a Config for as long as the app runs.

    ``config_lifespan(*sources, **load_options)`` calls ``load(*sources, **load_options)`` each
    time the app starts and closes that Config when the app stops. Startup fails with the real
    error (``InitialLoadError``) if there is no first good configuration.

    ``config_lifespan(config=config)`` uses a Config you made with ``load(...)`` instead, for
    code outside requests that needs a reference to it. If it is not open yet, the lifespan
    opens it and closes it at shutdown (a Config opens once, so the app can start once); if it
    is already open, the lifespan only exposes it and closing it stays your job.

    The Config goes in ``app.state.<state_key>`` and in the lifespan state (so in every
    ``request.state.<state_key>``). ``lifespan`` is your own lifespan (an
    ``@asynccontextmanager`` function of the app): it runs inside, so it can already read
    ``app.state.<state_key>``, and the state it yields is merged in.

    ```python
    @asynccontextmanager
    async def pool(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with connect(app.state.config["db.dsn"]) as db:
            yield {"db": db}

    app = Starlette(routes=routes, lifespan=config_lifespan("settings.toml", lifespan=pool))
    ```
    """
    if config is not None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config made by load(), got {type(config).__name__}")
        if sources or load_options:
            raise TypeError("pass either sources and load() options, or config=, not both")
    else:
        load(*sources, **load_options)  # a mistake in the options fails here, not at startup

    def lifespan_context(app: Any) -> _ConfigLifespan:
        return _ConfigLifespan(
            app,
            load(*sources, **load_options) if config is None else config,
            state_key=state_key,
            lifespan=lifespan,
        )

    return lifespan_context


class _ConfigLifespan:
    """One run of the app: opens the Config (and the wrapped lifespan), then closes both."""

    def __init__(
        self, app: Any, config: Config, *, state_key: str, lifespan: _UserLifespan | None
    ) -> None:
        self._app = app
        self._config = config
        self._state_key = state_key
        self._lifespan = lifespan
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> dict[str, Any]:
        # A class rather than an async generator: the Config holds a task group open, and a
        # generator must not yield from inside one.
        config, key = self._config, self._state_key
        async with AsyncExitStack() as stack:
            if config.statistics().state != "opened":
                await stack.enter_async_context(config)
            app_state = getattr(self._app, "state", None)
            if app_state is not None:
                setattr(app_state, key, config)
            state: dict[str, Any] = {}
            if self._lifespan is not None:
                user_state = await stack.enter_async_context(self._lifespan(self._app))
                state.update(user_state or {})
                if key in state:
                    raise RuntimeError(
                        f"the wrapped lifespan yields state {key!r}, which config_lifespan() "
                        "uses for the Config: pass config_lifespan(state_key=...) another name"
                    )
            state[key] = config
            self._stack = stack.pop_all()
        return state

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))


class SnapshotMiddleware:
    """Pins ``config.snapshot`` once per HTTP or WebSocket request, in ``request.state``.

    A pure ASGI middleware: it finds the Config that :func:`config_lifespan` put in
    ``scope["state"][state_key]`` (or ``app.state``) and stores its current snapshot in
    ``scope["state"][snapshot_key]``, unless an outer layer already did. Everything that reads
    through :func:`get_snapshot` during the request then sees that one version.

    ```python
    app = Starlette(routes=routes, lifespan=config_lifespan("settings.toml"),
                    middleware=[Middleware(SnapshotMiddleware)])
    ```

    With other keys, pass the same ``state_key`` to :func:`config_lifespan` and read the
    snapshot as ``request.state.<snapshot_key>`` (:func:`get_snapshot` uses the default keys).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state_key: str = _STATE_KEY,
        snapshot_key: str = _SNAPSHOT_KEY,
    ) -> None:
        self.app = app
        self.state_key = state_key
        self.snapshot_key = snapshot_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            _pin(scope, self.state_key, self.snapshot_key)
        await self.app(scope, receive, send)


def get_snapshot(request: HTTPConnection) -> Snapshot:
    """The snapshot pinned for this request (pinned now, on first use, without the middleware).

    Takes a ``Request`` or a ``WebSocket``. In FastAPI, use the async twin in
    :mod:`aioconfig.integrations.fastapi` with ``Depends``.

    ```python
    async def homepage(request: Request) -> JSONResponse:
        snapshot = get_snapshot(request)
        return JSONResponse({"version": snapshot.version, "pool": snapshot["db.pool.max_size"]})
    ```
    """
    return _pin(request.scope, _STATE_KEY, _SNAPSHOT_KEY)


def get_config(request: HTTPConnection) -> Config:
    """The app's live Config, for ``refresh()`` and ``changes()`` (read values via a snapshot).

    ```python
    async def reload(request: Request) -> JSONResponse:
        result = await get_config(request).refresh(force=True)
        return JSONResponse({"changed": sorted(result.keys)})
    ```
    """
    return _find_config(request.scope, _STATE_KEY)


def _pin(scope: Scope, state_key: str, snapshot_key: str) -> Snapshot:
    # A server gives each request its own shallow copy of the lifespan state (ASGI spec), so
    # the pinned snapshot lives and dies with the request.
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    snapshot = state.get(snapshot_key)
    if snapshot is None:
        snapshot = state[snapshot_key] = _find_config(scope, state_key).snapshot
    elif not isinstance(snapshot, Snapshot):
        raise ConfigError(
            f"request.state.{snapshot_key} holds a {type(snapshot).__name__}, not a Snapshot: "
            "give SnapshotMiddleware(snapshot_key=...) a name nothing else uses"
        )
    return snapshot


def _find_config(scope: Scope, state_key: str) -> Config:
    state = scope.get("state")
    config = None if state is None else state.get(state_key)
    if config is None:
        config = getattr(getattr(scope.get("app"), "state", None), state_key, None)
    if isinstance(config, Config):
        return config
    if config is None:
        raise ConfigError(
            f"no aioconfig Config in request.state.{state_key} or app.state.{state_key}: "
            "start it with the app, e.g. Starlette(lifespan=config_lifespan('settings.toml')) "
            "or FastAPI(lifespan=config_lifespan('settings.toml'))"
        )
    raise ConfigError(
        f"request.state.{state_key} holds a {type(config).__name__}, not an aioconfig Config: "
        "give config_lifespan(state_key=...) a name nothing else uses"
    )
