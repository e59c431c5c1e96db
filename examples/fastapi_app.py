"""A FastAPI app that serves a live configuration: edit the file, the next response changes.

    uvicorn examples.fastapi_app:app          # from the repository root, aioconfig installed
    curl http://127.0.0.1:8000/

The settings are ``settings.toml`` next to this file, or the file named by the environment
variable ``AIOCONFIG_SETTINGS``. Every value in one response comes from one snapshot, pinned
by ``SnapshotMiddleware`` when the request arrives, so a response never mixes two versions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from aioconfig import Snapshot
from aioconfig.integrations.fastapi import SnapshotMiddleware, config_lifespan, get_snapshot

SETTINGS = Path(os.environ.get("AIOCONFIG_SETTINGS") or Path(__file__).with_name("settings.toml"))

app = FastAPI(title="aioconfig example", lifespan=config_lifespan(SETTINGS, refresh_interval=1))
app.add_middleware(SnapshotMiddleware)


@app.get("/")
async def index(snapshot: Annotated[Snapshot, Depends(get_snapshot)]) -> dict[str, Any]:
    """The settings this request sees, all from one version."""
    return {
        "version": snapshot.version,
        "app": snapshot["app.name"],
        "db": {"host": snapshot["db.host"], "port": snapshot["db.port"]},
        "pool_max_size": snapshot["db.pool.max_size"],
        "features": dict(snapshot["feature"]),
    }
