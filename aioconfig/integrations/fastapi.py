"""FastAPI integration: the Starlette adapter, with its dependencies made async for FastAPI.

```python
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from aioconfig import Snapshot
from aioconfig.integrations.fastapi import SnapshotMiddleware, config_lifespan, get_snapshot

app = FastAPI(lifespan=config_lifespan("settings.toml"))
app.add_middleware(SnapshotMiddleware)


@app.get("/")
async def index(snapshot: Annotated[Snapshot, Depends(get_snapshot)]) -> dict[str, Any]:
    return {"version": snapshot.version, "db": snapshot["db.host"]}
```

``config_lifespan`` and ``SnapshotMiddleware`` are those of
:mod:`aioconfig.integrations.starlette`. ``get_snapshot`` and ``get_config`` here are ``async``
twins of the Starlette ones: FastAPI runs a plain function dependency in its thread pool, so a
sync one would cost every request a trip to a worker thread for a dictionary lookup.
"""

from __future__ import annotations

from .._extras import needs

with needs("starlette", "fastapi", by=__name__):  # FastAPI brings Starlette
    from starlette.requests import HTTPConnection

from .._config import Config
from .._snapshot import Snapshot
from . import starlette as _starlette
from .starlette import SnapshotMiddleware as SnapshotMiddleware
from .starlette import config_lifespan as config_lifespan

__all__ = ("SnapshotMiddleware", "config_lifespan", "get_config", "get_snapshot")


async def get_snapshot(request: HTTPConnection) -> Snapshot:
    """Dependency: the snapshot pinned for this request (see the Starlette ``get_snapshot``)."""
    return _starlette.get_snapshot(request)


async def get_config(request: HTTPConnection) -> Config:
    """Dependency: the app's live Config (see the Starlette ``get_config``)."""
    return _starlette.get_config(request)
