from __future__ import annotations

import os

import pytest

from aioconfig._exceptions import ParseError
from aioconfig.sources import Env, NotModified, Payload

pytestmark = pytest.mark.anyio

SECRET = "hunter2-s3cr3t"


async def load_data(source: Env) -> object:
    result = await source.load(None)
    assert isinstance(result, Payload)
    return result.data


async def test_nesting() -> None:
    environ = {
        "MYAPP_DB__PORT": "5432",
        "MYAPP_DB__HOST": "db",
        "MYAPP_Debug": "1",
        "MYAPP_LOG__FILE__PATH": "/var/log/x",
        "MYAPPX": "not mine",
        "OTHER_DB__PORT": "1",
        "myapp_DB__PORT": "prefix is case-sensitive",
    }
    assert await load_data(Env("MYAPP", environ=environ)) == {
        "db": {"port": "5432", "host": "db"},
        "debug": "1",
        "log": {"file": {"path": "/var/log/x"}},
    }


async def test_prefix_with_trailing_underscore() -> None:
    source = Env("MYAPP_", environ={"MYAPP_A": "1", "MYAPP__B": "2"})
    assert source.name == "env:MYAPP_*"
    assert Env("MYAPP").name == "env:MYAPP_*"
    assert repr(source) == "Env('MYAPP_', nested_separator='__')"
    assert await load_data(source) == {"a": "1", "_b": "2"}


async def test_custom_separator() -> None:
    source = Env("APP", nested_separator=".", environ={"APP_Db.Port": "1"})
    assert await load_data(source) == {"db": {"port": "1"}}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="prefix must not be empty"):
        Env("")
    with pytest.raises(ValueError, match="prefix must not be empty"):
        Env("_")
    with pytest.raises(ValueError, match="nested_separator must not be empty"):
        Env("APP", nested_separator="")


async def test_reads_os_environ_at_each_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOCONFIG_TEST_A", "1")
    source = Env("AIOCONFIG_TEST")
    assert await load_data(source) == {"a": "1"}
    monkeypatch.setenv("AIOCONFIG_TEST_A", "2")
    assert await load_data(source) == {"a": "2"}
    assert os.environ["AIOCONFIG_TEST_A"] == "2"


async def test_token() -> None:
    environ = {"APP_A": "1", "APP_B": "2"}
    source = Env("APP", environ=environ)
    first = await source.load(None)
    assert isinstance(first, Payload)
    assert await source.load(first.token) == NotModified(first.token)
    environ["APP_B"] = "3"
    second = await source.load(first.token)
    assert isinstance(second, Payload)
    assert second.data == {"a": "1", "b": "3"}
    assert SECRET not in repr(second.token)
    environ["UNRELATED"] = "x"
    assert await source.load(second.token) == NotModified(second.token)


async def test_token_does_not_confuse_name_and_value_boundaries() -> None:
    one = await Env("APP", environ={"APP_A": "B"}).load(None)
    other = await Env("APP", environ={"APP_AB": ""}).load(None)
    assert one.token != other.token


async def test_no_matching_variables() -> None:
    assert await load_data(Env("APP", environ={"OTHER": "1"})) == {}


@pytest.mark.parametrize("variable", ["MYAPP_DB____PORT", "MYAPP_", "MYAPP_DB__", "MYAPP___DB"])
async def test_empty_segment(variable: str) -> None:
    with pytest.raises(ParseError) as caught:
        await Env("MYAPP", environ={variable: SECRET}).load(None)
    assert str(caught.value) == f"env:MYAPP_*: variable {variable} has an empty key segment"
    assert caught.value.source == "env:MYAPP_*"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MYAPP_DB": SECRET, "MYAPP_DB__PORT": SECRET},
            "variables MYAPP_DB and MYAPP_DB__PORT conflict at key 'db'",
        ),
        (
            {"MYAPP_DB__PORT__X": SECRET, "MYAPP_DB__PORT": SECRET},
            "variables MYAPP_DB__PORT and MYAPP_DB__PORT__X conflict at key 'db.port'",
        ),
        (
            {"MYAPP_DB__PORT": SECRET, "MYAPP_db__port": SECRET},
            "variables MYAPP_DB__PORT and MYAPP_db__port conflict at key 'db.port'",
        ),
    ],
)
async def test_conflicts_name_both_variables(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ParseError) as caught:
        await Env("MYAPP", environ=environ).load(None)
    assert str(caught.value) == f"env:MYAPP_*: {message}"
    assert SECRET not in str(caught.value)


def test_options() -> None:
    assert Env("APP").optional is False
    assert Env("APP", optional=True).optional is True
    assert Env("APP").can_watch is False
