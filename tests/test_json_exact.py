"""JSON integers past 64 bits read exactly, as TOML and YAML read them (issue 10).

orjson turns them into floats; ``aioconfig._json.loads`` decodes such documents again with
the standard library. Every path that reads JSON goes through it: files and HTTP bodies, etcd
values (``tests/sources/test_etcd.py`` covers the store), ``@json`` tokens.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiohttp import web
from http_helpers import serve

from aioconfig import FileCache, InitialLoadError, ParseError, load
from aioconfig._json import loads
from aioconfig.sources import Env, File, Http

pytestmark = pytest.mark.anyio

BIG = 2**70 + 1  # 1180591620717411303425: 22 digits, no float holds it
DOCUMENT = (
    f'{{"big": {BIG}, "negative": {-BIG}, "edge": 18446744073709551615,'
    f' "past": 18446744073709551616, "nested": {{"list": [1, {BIG}, 2.5]}},'
    ' "text": "12345678901234567890123", "small": 7, "fraction": 0.1000000000000000000000001}'
)
EXPECTED = {
    "big": BIG,
    "negative": -BIG,
    "edge": 2**64 - 1,
    "past": 2**64,
    "nested": {"list": [1, BIG, 2.5]},
    "text": "12345678901234567890123",
    "small": 7,
    "fraction": 0.1,
}


def test_orjson_alone_would_lose_the_digits() -> None:
    assert orjson.loads(str(BIG)) != BIG  # the reason for aioconfig._json


@pytest.mark.parametrize("form", [str, str.encode])
def test_loads_keeps_every_integer_and_type(form: object) -> None:
    value = loads(form(DOCUMENT))  # type: ignore[operator]
    assert value == EXPECTED
    assert type(value["big"]) is int and type(value["nested"]["list"][1]) is int
    assert type(value["fraction"]) is float


def test_loads_keeps_orjson_errors_and_their_positions() -> None:
    with pytest.raises(orjson.JSONDecodeError) as caught:
        loads('{"big": 123456789012345678901234567890 "x": 1}')
    assert (caught.value.lineno, caught.value.colno) == (1, 40)  # orjson 3.8 to 3.13 agree
    for constant in ("NaN", "Infinity", "-Infinity"):  # the standard library would take them
        with pytest.raises(orjson.JSONDecodeError):
            loads(f'{{"a": {constant}, "b": 123456789012345678901234567890}}')


async def test_a_json_file_reads_exactly_and_comes_back_from_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    path.write_text(DOCUMENT)
    cache = FileCache(tmp_path / "cache.json")
    async with load(File(path), mode="manual", cache=cache) as config:
        assert config.snapshot.to_dict() == EXPECTED
        assert config["nested.list"][1] == BIG
    path.write_text('{"broken": ')
    async with load(File(path), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache and config.snapshot.to_dict() == EXPECTED


async def test_a_json_body_over_http_reads_exactly() -> None:
    async def document(request: web.Request) -> web.Response:
        return web.Response(text=DOCUMENT, content_type="application/json")

    async with serve(("/app.json", document)) as server:
        async with load(Http(str(server.make_url("/app.json"))), mode="manual") as config:
            assert config.snapshot.to_dict() == EXPECTED


async def test_a_json_token_reads_exactly() -> None:
    environ = {"APP_LIMITS": f'@json {{"max": {BIG}, "min": -1}}'}
    async with load(Env("APP", environ=environ), mode="manual") as config:
        assert config["limits.max"] == BIG and type(config["limits.max"]) is int


async def test_a_malformed_document_with_long_digits_is_still_a_parse_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"big": 123456789012345678901234567890 "x": 1}')
    with pytest.raises(InitialLoadError) as caught:
        await load(File(path), mode="manual")
    error = caught.value.errors[0]
    assert isinstance(error, ParseError) and "broken.json:1:40" in str(error)
