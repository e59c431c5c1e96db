from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from aioconfig import Config, ConfigError, Snapshot, load
from aioconfig.integrations import fastapi as fastapi_integration
from aioconfig.integrations.starlette import (
    SnapshotMiddleware,
    config_lifespan,
    get_config,
    get_snapshot,
)
from aioconfig.sources import File
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio

Lifespan = Callable[[Any], Any]


def make_app(
    lifespan: Lifespan | None, *, middleware: bool = True, source: MutableSource | None = None
) -> Starlette:
    """A Starlette app whose ``/`` reads the pinned snapshot twice, around a forced refresh."""

    async def index(request: Request) -> JSONResponse:
        first = get_snapshot(request)
        if source is not None and "swap" in request.query_params:
            source.set({"greeting": request.query_params["swap"]})
            result = await get_config(request).refresh(force=True)
            assert result.changed
        second = get_snapshot(request)
        return JSONResponse(
            {
                "first": [first.version, first["greeting"]],
                "second": [second.version, second["greeting"]],
                "live": get_config(request).version,
            }
        )

    async def state(request: Request) -> JSONResponse:
        config = request.state.config
        return JSONResponse(
            {
                "is_config": isinstance(config, Config),
                "same_as_app": config is request.app.state.config,
                "same_as_get_config": config is get_config(request),
            }
        )

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        snapshot = get_snapshot(websocket)
        await websocket.send_json([snapshot.version, snapshot["greeting"]])
        await websocket.close()

    return Starlette(
        routes=[Route("/", index), Route("/state", state), WebSocketRoute("/ws", socket)],
        lifespan=lifespan,
        middleware=[Middleware(SnapshotMiddleware)] if middleware else [],
    )


def poll(check: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Call the blocking ``check`` every 20 ms until it is true; fail after ``timeout`` seconds."""

    async def run() -> None:
        with anyio.fail_after(timeout):
            while True:
                if check():
                    return
                await anyio.sleep(0.02)

    anyio.run(run)


# ---------------------------------------------------------------------------- the lifespan


def test_lifespan_exposes_the_config_in_request_state_and_app_state() -> None:
    source = MutableSource({"greeting": "hello"})
    app = make_app(config_lifespan(source, mode="manual"))
    with TestClient(app) as client:
        config = app.state.config
        assert isinstance(config, Config)
        assert config.statistics().state == "opened"
        assert client.get("/state").json() == {
            "is_config": True,
            "same_as_app": True,
            "same_as_get_config": True,
        }
    assert config.statistics().state == "closed"
    assert source.closed


def test_each_start_of_the_app_loads_a_new_config() -> None:
    app = make_app(config_lifespan(MutableSource({"greeting": "hello"}), mode="manual"))
    configs = []
    for _ in range(2):
        with TestClient(app) as client:
            configs.append(app.state.config)
            assert client.get("/").json()["first"] == [1, "hello"]
    assert configs[0] is not configs[1]


def test_lifespan_fails_the_startup_with_the_real_error(tmp_path: Path) -> None:
    app = make_app(config_lifespan(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"), TestClient(app):
        pass  # pragma: no cover


def test_wrapped_lifespan_runs_inside_and_its_state_is_merged() -> None:
    seen: list[str] = []

    @asynccontextmanager
    async def resources(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        config = app.state.config  # already open
        seen.append(f"start {config['greeting']}")
        yield {"pool": "a pool"}
        seen.append(f"stop {config.statistics().state}")

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(
            {"pool": request.state.pool, "greeting": get_snapshot(request)["greeting"]}
        )

    lifespan = config_lifespan(MutableSource({"greeting": "hi"}), mode="manual", lifespan=resources)
    app = Starlette(routes=[Route("/", endpoint)], lifespan=lifespan)
    with TestClient(app) as client:
        assert client.get("/").json() == {"pool": "a pool", "greeting": "hi"}
    assert seen == ["start hi", "stop opened"]  # the wrapped lifespan stops before the Config


def test_wrapped_lifespan_may_not_take_the_configs_state_key() -> None:
    @asynccontextmanager
    async def clash(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"config": "mine"}

    app = make_app(config_lifespan(MutableSource(), mode="manual", lifespan=clash))
    with pytest.raises(RuntimeError, match="state_key"), TestClient(app):
        pass  # pragma: no cover


async def test_lifespan_with_a_config_not_yet_open_opens_and_closes_it() -> None:
    config = load(MutableSource({"greeting": "hello"}), mode="manual")
    app = Starlette()
    async with config_lifespan(config=config)(app) as state:
        assert state == {"config": config}
        assert app.state.config is config
        assert config["greeting"] == "hello"
    assert config.statistics().state == "closed"


async def test_lifespan_with_an_open_config_leaves_closing_it_to_its_owner() -> None:
    async with load(MutableSource({"greeting": "hello"}), mode="manual") as config:
        app = Starlette()
        async with config_lifespan(config=config, state_key="settings")(app) as state:
            assert state == {"settings": config}
            assert app.state.settings is config
        assert config.statistics().state == "opened"


def test_config_and_sources_are_exclusive() -> None:
    config = load(MutableSource())
    with pytest.raises(TypeError, match="not both"):
        config_lifespan(MutableSource(), config=config)
    with pytest.raises(TypeError, match="not both"):
        config_lifespan(config=config, mode="manual")
    with pytest.raises(TypeError, match="made by load"):
        config_lifespan(config="settings.toml")  # type: ignore[arg-type]


def test_a_mistake_in_the_load_options_fails_at_once() -> None:
    with pytest.raises(TypeError, match="refresh_intervall"):
        config_lifespan(MutableSource(), refresh_intervall=5)
    with pytest.raises(ValueError, match="mode"):
        config_lifespan(MutableSource(), mode="sometimes")


# ---------------------------------------------------------------------------- pinning


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "on-first-use"])
def test_one_request_sees_one_snapshot_while_a_refresh_swaps(middleware: bool) -> None:
    source = MutableSource({"greeting": "hello"})
    app = make_app(config_lifespan(source, mode="manual"), middleware=middleware, source=source)
    with TestClient(app) as client:
        assert client.get("/", params={"swap": "bonjour"}).json() == {
            "first": [1, "hello"],
            "second": [1, "hello"],  # pinned, although the Config moved on
            "live": 2,
        }
        assert client.get("/").json()["first"] == [2, "bonjour"]  # the next request moves on


def test_middleware_pins_for_websockets_too() -> None:
    app = make_app(config_lifespan(MutableSource({"greeting": "hello"}), mode="manual"))
    with TestClient(app) as client, client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == [1, "hello"]


def test_middleware_and_lifespan_with_other_keys() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "main": get_snapshot(request)["greeting"],
                "flags": request.state.flags_snapshot["beta"],
            }
        )

    lifespan = config_lifespan(
        MutableSource({"beta": True}),
        mode="manual",
        state_key="flags",
        lifespan=config_lifespan(MutableSource({"greeting": "hello"}), mode="manual"),
    )
    app = Starlette(
        routes=[Route("/", endpoint)],
        lifespan=lifespan,
        middleware=[
            Middleware(SnapshotMiddleware),
            Middleware(SnapshotMiddleware, state_key="flags", snapshot_key="flags_snapshot"),
        ],
    )
    with TestClient(app) as client:
        assert client.get("/").json() == {"main": "hello", "flags": True}


# ---------------------------------------------------------------------------- live changes


def file_app(source: Path | File, **load_options: Any) -> FastAPI:
    """A FastAPI app over a TOML file, with a ``/reload`` endpoint (tests the re-exports)."""
    app = FastAPI(lifespan=fastapi_integration.config_lifespan(source, **load_options))
    app.add_middleware(fastapi_integration.SnapshotMiddleware)

    @app.get("/")
    async def index(
        snapshot: Annotated[Snapshot, Depends(fastapi_integration.get_snapshot)],
    ) -> dict[str, Any]:
        return {"version": snapshot.version, "greeting": snapshot["greeting"]}

    @app.post("/reload")
    async def reload(
        config: Annotated[Config, Depends(fastapi_integration.get_config)],
    ) -> dict[str, Any]:
        result = await config.refresh(force=True)
        return {"changed": sorted(result.keys)}

    return app


def test_file_edit_changes_the_next_response_after_a_refresh(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('greeting = "hello"\n')
    with TestClient(file_app(path, mode="manual")) as client:
        assert client.get("/").json() == {"version": 1, "greeting": "hello"}
        path.write_text('greeting = "bonjour"\n')
        assert client.post("/reload").json() == {"changed": ["greeting"]}
        assert client.get("/").json() == {"version": 2, "greeting": "bonjour"}


@pytest.mark.slow
@pytest.mark.parametrize("watch", [True, False], ids=["watch", "poll"])
def test_file_edit_changes_the_next_response_without_a_restart(tmp_path: Path, watch: bool) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('greeting = "hello"\n')
    # Watched, the edit is pushed (no poll would come in time); not watched, the poll loop
    # finds it within 0.2 s.
    app = file_app(File(path, watch=watch), refresh_interval=60 if watch else 0.2, jitter=0)
    with TestClient(app) as client:
        assert client.get("/").json() == {"version": 1, "greeting": "hello"}
        path.write_text('greeting = "bonjour"\n')
        poll(lambda: client.get("/").json()["greeting"] == "bonjour")
        assert client.get("/").json() == {"version": 2, "greeting": "bonjour"}


# ---------------------------------------------------------------------------- misuse


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "get_snapshot"])
def test_a_missing_lifespan_is_a_clear_error(middleware: bool) -> None:
    app = make_app(None, middleware=middleware)
    with TestClient(app) as client, pytest.raises(ConfigError, match=r"config_lifespan\("):
        client.get("/")


def test_something_else_under_the_state_key_is_a_clear_error() -> None:
    @asynccontextmanager
    async def other(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"config": {"greeting": "hello"}}

    with TestClient(make_app(other)) as client, pytest.raises(ConfigError, match="holds a dict"):
        client.get("/")


def test_get_config_after_shutdown_says_the_config_is_closed() -> None:
    app = make_app(config_lifespan(MutableSource({"greeting": "hello"}), mode="manual"))
    with TestClient(app):
        pass
    client = TestClient(app)  # requests without the lifespan: app.state still has the old one
    with pytest.raises(ConfigError, match="closed"):
        client.get("/")


def test_fastapi_module_has_the_starlette_lifespan_and_async_dependencies() -> None:
    assert fastapi_integration.config_lifespan is config_lifespan
    assert fastapi_integration.SnapshotMiddleware is SnapshotMiddleware
    # FastAPI runs plain-function dependencies in its thread pool: these stay on the loop.
    assert inspect.iscoroutinefunction(fastapi_integration.get_snapshot)
    assert inspect.iscoroutinefunction(fastapi_integration.get_config)


async def swap_greeting(
    request: Request, config: Annotated[Config, Depends(fastapi_integration.get_config)]
) -> int:
    """A FastAPI dependency that changes the source and refreshes: the Config moves on."""
    request.app.state.source.set({"greeting": "bonjour"})
    await config.refresh(force=True)
    return config.version


def test_fastapi_dependencies_share_one_pinned_snapshot() -> None:
    source = MutableSource({"greeting": "hello"})
    app = FastAPI(lifespan=config_lifespan(source, mode="manual"))
    app.state.source = source

    @app.get("/")
    async def index(
        before: Annotated[Snapshot, Depends(fastapi_integration.get_snapshot)],
        live: Annotated[int, Depends(swap_greeting)],
        after: Annotated[Snapshot, Depends(get_snapshot)],  # the sync one, in a worker thread
    ) -> dict[str, Any]:
        return {"before": before["greeting"], "after": after["greeting"], "live": live}

    with TestClient(app) as client:  # no middleware: the first dependency pins
        assert client.get("/").json() == {"before": "hello", "after": "hello", "live": 2}
        assert client.get("/").json() == {"before": "bonjour", "after": "bonjour", "live": 2}
