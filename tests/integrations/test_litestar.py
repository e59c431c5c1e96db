"""The Litestar integration, through Litestar's own TestClient."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.testing import TestClient

from aioconfig import Config, ConfigError, Snapshot, load
from aioconfig.integrations.litestar import config_dependencies, config_lifespan
from aioconfig.testing import MutableSource


def make_app(source: MutableSource, **lifespan_options: Any) -> Litestar:
    async def swap(config: NamedDependency[Config]) -> int:
        """A dependency that changes the source and refreshes: the Config moves on."""
        source.set({"greeting": "bonjour"})
        assert (await config.refresh(force=True)).changed
        return config.version

    @get("/", dependencies={"live": swap})
    async def index(
        before: NamedDependency[Snapshot],
        live: NamedDependency[int],
        snapshot: NamedDependency[Snapshot],
    ) -> dict[str, Any]:
        return {"first": before["greeting"], "after": snapshot["greeting"], "live": live}

    @get("/version")
    async def version(snapshot: NamedDependency[Snapshot]) -> dict[str, Any]:
        return {"version": snapshot.version, "greeting": snapshot["greeting"]}

    return Litestar(
        [index, version],
        lifespan=[config_lifespan(source, mode="manual", **lifespan_options)],
        dependencies={**config_dependencies(), "before": config_dependencies()["snapshot"]},
    )


def test_lifespan_and_one_snapshot_per_request() -> None:
    source = MutableSource({"greeting": "hello"})
    app = make_app(source)
    with TestClient(app) as client:
        config = app.state.config
        assert isinstance(config, Config) and config.statistics().state == "opened"
        assert client.get("/version").json() == {"version": 1, "greeting": "hello"}
        # "before" and "snapshot" resolve before "live" swaps: one version for the request
        body = client.get("/").json()
        assert body["live"] == 2 and body["after"] == body["first"]
        assert client.get("/version").json() == {"version": 2, "greeting": "bonjour"}
    assert config.statistics().state == "closed" and source.closed


def test_startup_fails_with_the_real_error(tmp_path: Path) -> None:
    app = Litestar([], lifespan=[config_lifespan(tmp_path / "missing.toml", max_init_wait=0.1)])
    with pytest.raises(Exception) as raised, TestClient(app):
        pass  # pragma: no cover
    error: BaseException = raised.value
    while not isinstance(error, ConfigError):  # the test client's task group wraps it
        error = error.exceptions[0]  # type: ignore[attr-defined]
    assert "missing.toml" in str(error)


def test_a_config_of_ones_own_and_a_missing_lifespan() -> None:
    config = load(MutableSource({"greeting": "mine"}), mode="manual")

    @get("/")
    async def index(snapshot: NamedDependency[Snapshot]) -> str:
        return str(snapshot["greeting"])

    app = Litestar(
        [index], lifespan=[config_lifespan(config=config)], dependencies=config_dependencies()
    )
    with TestClient(app) as client:
        assert client.get("/").text == "mine"
    assert config.statistics().state == "closed"
    bare = Litestar([index], dependencies=config_dependencies())
    with TestClient(bare) as client:
        response = client.get("/")
    assert response.status_code == 500
    with pytest.raises(TypeError, match="not both"):
        config_lifespan(MutableSource(), config=config)
