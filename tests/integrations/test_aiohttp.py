"""The aiohttp integration, through aiohttp's own TestServer and TestClient on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aioconfig import Config, ConfigError, load
from aioconfig.integrations.aiohttp import (
    CONFIG_KEY,
    config_context,
    get_config,
    get_snapshot,
    snapshot_middleware,
)
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio


def make_app(source: MutableSource, *, middleware: bool = True) -> web.Application:
    """``/`` reads the pinned snapshot twice, around a forced refresh that changes the source."""

    async def index(request: web.Request) -> web.Response:
        first = get_snapshot(request)
        if "swap" in request.query:
            source.set({"greeting": request.query["swap"]})
            assert (await get_config(request).refresh(force=True)).changed
        second = get_snapshot(request)
        return web.json_response(
            {
                "first": [first.version, first["greeting"]],
                "second": [second.version, second["greeting"]],
                "live": request.app[CONFIG_KEY].version,
            }
        )

    app = web.Application(middlewares=[snapshot_middleware] if middleware else [])
    app.cleanup_ctx.append(config_context(source, mode="manual"))
    app.router.add_get("/", index)
    return app


@asynccontextmanager
async def client_for(
    app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "on-first-use"])
async def test_one_request_sees_one_snapshot_while_a_refresh_swaps(middleware: bool) -> None:
    source = MutableSource({"greeting": "hello"})
    app = make_app(source, middleware=middleware)
    async with client_for(app) as client:
        config = app[CONFIG_KEY]
        assert isinstance(config, Config) and config.statistics().state == "opened"
        response = await client.get("/", params={"swap": "bonjour"})
        assert await response.json() == {
            "first": [1, "hello"],
            "second": [1, "hello"],  # pinned, although the Config moved on
            "live": 2,
        }
        response = await client.get("/")
        assert (await response.json())["first"] == [2, "bonjour"]
    assert config.statistics().state == "closed"  # cleanup closed it
    assert source.closed


async def test_a_sub_app_finds_the_parents_config() -> None:
    async def greeting(request: web.Request) -> web.Response:
        return web.Response(text=get_snapshot(request)["greeting"])

    app = web.Application()
    app.cleanup_ctx.append(config_context(MutableSource({"greeting": "hi"}), mode="manual"))
    sub = web.Application(middlewares=[snapshot_middleware])
    sub.router.add_get("/greeting", greeting)
    app.add_subapp("/sub", sub)
    async with client_for(app) as client:
        response = await client.get("/sub/greeting")
        assert await response.text() == "hi"


async def test_startup_fails_with_the_real_error(tmp_path: Path) -> None:
    app = web.Application()
    app.cleanup_ctx.append(config_context(tmp_path / "missing.toml", max_init_wait=0.1))
    server = TestServer(app, host="127.0.0.1")  # a TestClient would leave its session open
    try:
        with pytest.raises(ConfigError, match=r"missing\.toml"):
            await server.start_server()
    finally:
        await server.close()


async def test_a_config_of_ones_own() -> None:
    config = load(MutableSource({"greeting": "hello"}), mode="manual")
    app = make_app(MutableSource({"greeting": "unused"}))
    app.cleanup_ctx.append(config_context(config=config))  # the later entry wins the key
    async with client_for(app) as client:
        assert app[CONFIG_KEY] is config
        assert (await (await client.get("/")).json())["first"] == [1, "hello"]
    assert config.statistics().state == "closed"  # it opened it, so it closed it
    async with load(MutableSource({"greeting": "open"}), mode="manual") as already:
        app = make_app(MutableSource({"greeting": "unused"}))
        app.cleanup_ctx.append(config_context(config=already))
        async with client_for(app):
            pass
        assert already.statistics().state == "opened"  # closing it stays its owner's job


async def test_without_the_context_a_clear_error() -> None:
    async def index(request: web.Request) -> web.Response:
        try:
            get_snapshot(request)
        except ConfigError as exc:
            return web.Response(text=str(exc), status=500)
        raise AssertionError("unreachable")  # pragma: no cover

    app = web.Application()
    app.router.add_get("/", index)
    async with client_for(app) as client:
        assert "config_context(" in await (await client.get("/")).text()


def test_options_are_checked_at_once() -> None:
    with pytest.raises(TypeError, match="refresh_intervall"):
        config_context(MutableSource(), refresh_intervall=5)
    with pytest.raises(TypeError, match="not both"):
        config_context(MutableSource(), config=load(MutableSource()))
    with pytest.raises(TypeError, match="made by load"):
        config_context(config="settings.toml")  # type: ignore[arg-type]
