"""aiohttp integration: one live Config per app, one pinned Snapshot per request.

```python
from aiohttp import web

from aioconfig.integrations.aiohttp import config_context, get_snapshot, snapshot_middleware


async def index(request: web.Request) -> web.Response:
    snapshot = get_snapshot(request)  # the same version for the whole request
    return web.json_response({"version": snapshot.version, "db": snapshot["db.host"]})


app = web.Application(middlewares=[snapshot_middleware])
app.cleanup_ctx.append(config_context("settings.toml", refresh_interval=10))
app.router.add_get("/", index)
```

``config_context`` opens the Config when the app starts and closes it when the app stops; the
Config is ``app[CONFIG_KEY]`` (an ``aiohttp.web.AppKey``, so ``app[CONFIG_KEY]`` is typed as
``Config``), found from sub-apps too through ``request.config_dict``. The middleware pins
``config.snapshot`` once per request, so a request never mixes two versions.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from .._config import Config
from .._exceptions import ConfigError
from .._load import load
from .._snapshot import Snapshot
from ..sources._base import Source

__all__ = ("CONFIG_KEY", "config_context", "get_config", "get_snapshot", "snapshot_middleware")

#: Where :func:`config_context` puts the Config: ``request.app[CONFIG_KEY]``.
CONFIG_KEY: web.AppKey[Config] = web.AppKey("aioconfig.config", Config)
# In the request itself, so it lives and dies with it: a RequestKey where aiohttp has them
# (3.12 on: a plain string there warns), a string before.
_SNAPSHOT: Any = (
    web.RequestKey("aioconfig.snapshot", Snapshot)
    if hasattr(web, "RequestKey")
    else "aioconfig.snapshot"
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def config_context(
    *sources: Source | str | os.PathLike[str],
    config: Config | None = None,
    key: web.AppKey[Config] = CONFIG_KEY,
    **load_options: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An ``app.cleanup_ctx`` entry that runs a Config for as long as the app runs.

    ``config_context(*sources, **load_options)`` calls ``load(*sources, **load_options)`` at
    each start and closes that Config at cleanup; startup fails with the real error
    (``InitialLoadError``) if there is no first good configuration. ``config_context(config=c)``
    uses a Config you made: opened here (and closed at cleanup) unless it is open already.
    """
    if config is not None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config made by load(), got {type(config).__name__}")
        if sources or load_options:
            raise TypeError("pass either sources and load() options, or config=, not both")
    else:
        load(*sources, **load_options)  # a mistake in the options fails here, not at startup

    async def context(app: web.Application) -> AsyncIterator[None]:
        # ``await`` opens the Config in a host task of its own: no task group is held across
        # this generator's yield.
        running = load(*sources, **load_options) if config is None else config
        owned = running.statistics().state != "opened"
        if owned:
            await running
        app[key] = running
        try:
            yield
        finally:
            if owned:
                await running.aclose()

    return context


@web.middleware
async def snapshot_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Pins the app's ``config.snapshot`` once per request (see :func:`get_snapshot`)."""
    get_snapshot(request)
    return await handler(request)


def get_snapshot(request: web.Request) -> Snapshot:
    """The snapshot pinned for this request (pinned now, on first use, without the middleware)."""
    snapshot = request.get(_SNAPSHOT)
    if snapshot is None:
        snapshot = request[_SNAPSHOT] = get_config(request).snapshot
    assert isinstance(snapshot, Snapshot)
    return snapshot


def get_config(request: web.Request, key: web.AppKey[Config] = CONFIG_KEY) -> Config:
    """The app's live Config (from this app or a parent app), for ``refresh()`` and
    ``changes()``; read values through :func:`get_snapshot`."""
    config = request.config_dict.get(key)
    if config is None:
        raise ConfigError(
            "no aioconfig Config in this app: add it at startup, e.g. "
            "app.cleanup_ctx.append(config_context('settings.toml'))"
        )
    return config
