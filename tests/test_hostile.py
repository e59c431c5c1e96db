"""Hostile input: bombs, depth, ambiguous keys, numbers, and options given the wrong type.

Each case costs a clear error naming the source; the last good configuration stays; the event
loop is never held for long.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aioconfig import FileCache, InitialLoadError, ParseError, Validator, load
from aioconfig._limits import MAX_DEPTH
from aioconfig.sources import Env, File, Http
from aioconfig.sources._formats import parse

pytestmark = pytest.mark.anyio


def alias_bomb(levels: int = 10) -> str:
    """The YAML "billion laughs": each level lists the one before nine times (~500 bytes)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YAML aliases


def test_a_yaml_alias_bomb_is_refused_quickly_naming_the_source() -> None:
    document = alias_bomb().encode()
    assert len(document) < 600
    started = time.perf_counter()
    with pytest.raises(ParseError) as info:
        parse(document, "yaml", "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    assert str(info.value).startswith("bomb.yaml: expands to more than 100,000 values")


def test_aliases_that_stay_within_the_bound_are_fine() -> None:
    document = alias_bomb(levels=4).encode()  # 9 ** 4 = 6,561 values
    data = parse(document, "yaml", "small.yaml")
    assert len(data["a3"]) == 9 and data["a3"][0] == data["a2"]


async def test_a_bomb_served_over_http_keeps_the_last_good_configuration() -> None:
    body = {"text": "a: 1\n"}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body["text"], content_type="application/yaml")

    app = web.Application()
    app.router.add_get("/app.yaml", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        url = str(server.make_url("/app.yaml"))
        async with load(Http(url), mode="manual") as config:
            body["text"] = alias_bomb()
            started = time.perf_counter()
            result = await config.refresh(force=True)
            assert time.perf_counter() - started < 1.0
            assert isinstance(result.error, ParseError)
            assert "expands to more than" in str(result.error)
            assert config["a"] == 1 and config.version == 1
    finally:
        await server.close()


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", ".".join(["a"] * 5000) + " = 1\n"),
        ("deep.json", '{"a": ' + "[" * 600 + "]" * 600 + "}"),
        ("deep.yaml", "a: " + "[" * 2000 + "]" * 2000 + "\n"),
        ("deep2.yaml", "".join(f"{'  ' * n}k{n}:\n" for n in range(150)) + "  " * 150 + "v: 1\n"),
    ],
)
async def test_deep_documents_fail_fast_with_a_parse_error(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(InitialLoadError) as info:
        await load(File(path), max_init_wait=5)
    assert time.perf_counter() - started < 1.0  # not retried as if transient
    (error,) = info.value.errors
    assert isinstance(error, ParseError) and not error.transient
    assert str(error) == f"{path}: nested more than {MAX_DEPTH} levels deep"


async def test_a_deep_document_on_refresh_is_a_parse_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"a": 1}')
    async with load(File(path), mode="manual") as config:
        path.write_text('{"a": ' + "[" * 600 + "]" * 600 + "}")
        result = await config.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert config.statistics().engine_errors == 0 and config["a"] == 1


async def test_a_deep_document_at_start_up_falls_back_to_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"a": 1}')
    cache = FileCache(tmp_path / "cache.json")
    async with load(File(path), mode="manual", cache=cache):
        pass
    path.write_text('{"a": ' + "[" * 600 + "]" * 600 + "}")
    async with load(File(path), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache and config["a"] == 1


async def test_an_environment_variable_with_too_many_segments_is_refused() -> None:
    name = "DEEP_" + "__".join(["x"] * (MAX_DEPTH + 1))
    with pytest.raises(InitialLoadError, match=f"more than the {MAX_DEPTH} allowed"):
        await load(Env("DEEP", environ={name: "1"}))


async def test_a_json_cast_that_nests_too_deep_is_a_failed_cast() -> None:
    deep = "[" * 600 + "]" * 600
    with pytest.raises(InitialLoadError, match="nested more than"):
        await load(Env("CAST", environ={"CAST_A": "@json " + deep}))


# ---------------------------------------------------------------- wrong types, at the call


def test_load_needs_a_source() -> None:
    with pytest.raises(TypeError, match="load\\(\\) needs at least one source"):
        load()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_optional_must_be_a_bool(tmp_path: Path, value: object) -> None:
    with pytest.raises(TypeError, match=f"optional must be True or False, got {value!r}"):
        File(tmp_path / "a.toml", optional=value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optional must be True or False"):
        Http("http://127.0.0.1:1/a.json", optional=value)  # type: ignore[arg-type]


def test_a_validator_needs_names() -> None:
    with pytest.raises(TypeError, match="needs the names of the keys it checks"):
        Validator()
    with pytest.raises(TypeError, match="names must be non-empty strings"):
        Validator("")


async def test_the_event_loop_keeps_running_while_a_big_file_is_parsed(tmp_path: Path) -> None:
    """A File parses in a worker thread: the loop keeps ticking meanwhile."""
    path = tmp_path / "big.json"
    path.write_text("{" + ",".join(f'"k{i}": {{"v": {i}}}' for i in range(200_000)) + "}")
    longest = 0.0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.01)
        async with load(File(path), mode="manual") as config:
            assert config["k199999.v"] == 199999
        done.set()
    assert longest < 1.0  # loose: a shared machine; the benchmark measures it properly
