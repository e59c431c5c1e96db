"""Config: options, the read API, the lifecycle and start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aioconfig import (
    ClosedError,
    Config,
    InitialLoadError,
    KeyNotFound,
    ParseError,
    SourceUnavailable,
    load,
)
from aioconfig.sources import File, Static
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- options


def test_a_misspelled_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'refresh_intervall'"):
        load(Static({}), refresh_intervall=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"refresh_interval": -1}, "refresh_interval must be a finite number >= 0, got -1"),
        ({"refresh_interval": float("nan")}, "refresh_interval must be a finite number >= 0"),
        ({"max_init_wait": -0.5}, "max_init_wait must be a finite number >= 0, got -0.5"),
        ({"jitter": 1}, r"jitter must be in \[0, 1\), got 1"),
        ({"jitter": -0.1}, r"jitter must be in \[0, 1\), got -0.1"),
        ({"mode": "eager"}, "mode must be one of 'auto', 'lazy', 'manual'; got 'eager'"),
        ({"refresh_interval": 0}, "refresh_interval must be greater than 0 in 'auto' mode"),
    ],
)
def test_bad_option_values_are_value_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(Static({}), **options)


def test_bad_option_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="refresh_interval must be a number of seconds, got str"):
        load(Static({}), refresh_interval="30")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_change must be callable, got int"):
        load(Static({}), on_change=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="load\\(\\) takes Source objects or file paths, got dict"):
        load({"a": 1})  # type: ignore[arg-type]


async def test_a_path_means_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": {"b": 1}}')
    (tmp_path / "b.toml").write_text("[a]\nc = 2\n")
    async with load(str(tmp_path / "a.json"), tmp_path / "b.toml", mode="manual") as config:
        assert all(isinstance(s, File) for s in config.sources)
        assert config["a"] == {"b": 1, "c": 2}


# ---------------------------------------------------------------- reads


async def test_config_is_a_read_only_mapping_over_the_current_snapshot() -> None:
    async with load(
        Static({"db": {"host": "localhost", "port": 5432}, "debug": False}),
        Static({"db": {"port": 6543}}),
        mode="manual",
    ) as config:
        assert config["db.port"] == 6543
        assert config["db"]["host"] == "localhost"
        assert config.get("db.port", 1) == 6543
        assert config.get("db.user") is None
        assert config.get("db.user", "admin") == "admin"
        assert "db.host" in config and "db.user" not in config
        assert sorted(config) == ["db", "debug"]
        assert len(config) == 2
        assert dict(config.items())["debug"] is False
        assert config == {"db": {"host": "localhost", "port": 6543}, "debug": False}
        snap = config.snapshot
        assert snap.version == config.version == 1
        assert snap.sources == ("static", "static")
        with pytest.raises(KeyNotFound, match=r"no configuration key 'db\.user'"):
            config["db.user"]
        with pytest.raises(TypeError):
            config["db"]["port"] = 1


# ---------------------------------------------------------------- lifecycle


async def test_await_form_runs_until_aclose_which_is_idempotent() -> None:
    source = MutableSource({"a": 1})
    config = await load(source, refresh_interval=30)
    assert isinstance(config, Config)
    assert config["a"] == 1
    assert "opened" in repr(config)
    tasks_open = {t.get_name() for t in asyncio.all_tasks()}
    assert {"aioconfig host", "aioconfig poll"} <= tasks_open
    await config.aclose()
    await config.aclose()
    assert source.closed
    assert not {t.get_name() for t in asyncio.all_tasks()} & {"aioconfig host", "aioconfig poll"}
    assert repr(config) == "<Config closed version=1 sources=['mutable']>"


async def test_async_with_form_stops_everything_on_exit() -> None:
    source = MutableSource({"a": 1}, push=True)
    async with load(source) as config:
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"aioconfig poll", "aioconfig watch mutable"} <= names
    assert source.closed
    assert not any(t.get_name().startswith("aioconfig") for t in asyncio.all_tasks())
    with pytest.raises(ClosedError, match="this Config is closed"):
        config.get("a")
    with pytest.raises(ClosedError, match="this Config is closed"):
        config["a"]
    with pytest.raises(ClosedError, match="this Config is closed"):
        _ = config.snapshot
    with pytest.raises(ClosedError, match="this Config is closed"):
        config.changes()


async def test_aclose_inside_the_block_is_fine() -> None:
    async with load(Static({"a": 1})) as config:
        await config.aclose()
        with pytest.raises(ClosedError):
            config.get("a")


async def test_aclose_from_another_task_stops_the_work() -> None:
    source = MutableSource({"a": 1})
    async with load(source) as config:
        async with anyio.create_task_group() as tg:
            tg.start_soon(config.aclose)
        assert source.closed
        assert not any(t.get_name() == "aioconfig poll" for t in asyncio.all_tasks())
        with pytest.raises(ClosedError):
            config.get("a")


async def test_reads_before_opening_say_how_to_open() -> None:
    config = load(Static({"a": 1}))
    with pytest.raises(ClosedError, match=r"not open yet: use `config = await load\(\.\.\.\)`"):
        config.get("a")
    with pytest.raises(ClosedError, match="not open yet"):
        await config.refresh()
    await config.aclose()
    with pytest.raises(ClosedError, match="closed"):
        config.get("a")


async def test_a_config_opens_once() -> None:
    config = await load(Static({}))
    try:
        with pytest.raises(RuntimeError, match="a Config can be opened once; this one is opened"):
            async with config:
                pass
    finally:
        await config.aclose()
    with pytest.raises(RuntimeError, match="this one is closed"):
        await config


async def test_the_user_block_is_never_cancelled_by_the_config() -> None:
    source = MutableSource({"a": 1})
    async with load(source, mode="manual") as config:
        await config.aclose()
        await anyio.lowlevel.checkpoint()  # would raise if the block's scope had been cancelled
    assert source.closed


# ---------------------------------------------------------------- start-up


async def test_a_failing_start_names_every_source_and_why(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": 1,}')
    with pytest.raises(InitialLoadError) as info:
        async with load(tmp_path / "bad.json", tmp_path / "missing.toml"):
            pass
    message = str(info.value)
    assert message.startswith("could not load the configuration:\n  - ")
    assert f"{tmp_path / 'bad.json'}:1:" in message
    assert f"{tmp_path / 'missing.toml'}: file not found" in message
    assert {type(e) for e in info.value.errors} == {ParseError, SourceUnavailable}


async def test_an_optional_source_may_be_missing(tmp_path: Path) -> None:
    async with load(
        Static({"a": 1}), File(tmp_path / "local.toml", optional=True), mode="manual"
    ) as config:
        assert config == {"a": 1}
        (tmp_path / "local.toml").write_text("a = 2\n")
        assert (await config.refresh(force=True)).keys == {"a"}
        (tmp_path / "local.toml").unlink()
        assert (await config.refresh(force=True)).keys == {"a"}
        assert config["a"] == 1


@pytest.mark.slow
async def test_transient_failures_are_retried_until_max_init_wait() -> None:
    source = MutableSource({"a": 1})
    source.fail(SourceUnavailable("mutable", "connection refused"))
    with anyio.fail_after(5):
        with pytest.raises(InitialLoadError) as info:
            # The first retry comes within 0.25 s, so 0.6 s always sees at least two loads.
            await load(source, max_init_wait=0.6)
    assert str(info.value) == (
        "could not load the configuration within max_init_wait=0.6s:\n"
        "  - mutable: connection refused"
    )
    assert source.loads > 1
    assert source.closed


async def test_a_source_that_heals_during_start_up_is_used() -> None:
    source = MutableSource({"a": 1})
    source.fail(SourceUnavailable("mutable", "connection refused"))

    async def heal() -> None:
        await anyio.sleep(0.05)
        source.fail(None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(heal)
        async with load(source, max_init_wait=5) as config:
            assert config["a"] == 1


async def test_a_hanging_source_is_named_when_the_wait_runs_out() -> None:
    source = MutableSource({"a": 1}, name="https://config.example/app.json")
    source.gate = anyio.Event()
    with pytest.raises(InitialLoadError) as info:
        await load(Static({}), source, max_init_wait=0.1)
    assert str(info.value) == (
        "could not load the configuration within max_init_wait=0.1s:\n"
        "  - https://config.example/app.json: no answer before max_init_wait ran out"
    )


async def test_cancelling_the_opener_leaves_nothing_behind() -> None:
    source = MutableSource({"a": 1})
    source.gate = anyio.Event()
    with anyio.move_on_after(0.05):
        await load(source)
    assert not any(t.get_name().startswith("aioconfig") for t in asyncio.all_tasks())
    assert source.closed
