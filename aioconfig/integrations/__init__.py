"""Adapters that plug a live :class:`~aioconfig.Config` into web frameworks.

Each module is a thin adapter with no logic of its own: it opens the Config with the app's
lifespan and hands each request one pinned :class:`~aioconfig.Snapshot`.

* :mod:`aioconfig.integrations.starlette`: Starlette (and anything built on it).
* :mod:`aioconfig.integrations.fastapi`: the same names, for FastAPI apps.
* :mod:`aioconfig.integrations.aiohttp`: a ``cleanup_ctx`` entry, an ``AppKey`` and a middleware.
* :mod:`aioconfig.integrations.litestar`: a lifespan and a dependency provider.
* :mod:`aioconfig.integrations.flask` and :mod:`aioconfig.integrations.django`: a
  :class:`~aioconfig.sync.SyncConfig` (a Config on a thread of its own) per app or settings
  module, one pinned Snapshot per request.
"""
