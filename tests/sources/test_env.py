from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
        "db": {"port": 5432, "host": "db"},
        "debug": 1,
        "log": {"file": {"path": "/var/log/x"}},
    }


async def test_prefix_with_trailing_underscore() -> None:
    source = Env("MYAPP_", environ={"MYAPP_A": "1", "MYAPP__B": "2"})
    assert source.name == "env:MYAPP_*"
    assert Env("MYAPP").name == "env:MYAPP_*"
    assert repr(source) == "Env('MYAPP_', nested_separator='__')"
    assert await load_data(source) == {"a": 1, "_b": 2}


async def test_custom_separator() -> None:
    source = Env("APP", nested_separator=".", environ={"APP_Db.Port": "1"})
    assert await load_data(source) == {"db": {"port": 1}}


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
    assert await load_data(source) == {"a": 1}
    monkeypatch.setenv("AIOCONFIG_TEST_A", "2")
    assert await load_data(source) == {"a": 2}
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
    assert second.data == {"a": 1, "b": 3}
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


@dataclass
class Db:
    port: int


@dataclass
class Settings:
    db: Db


# -- Dynaconf's typing of values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # dynaconf tests/test_env_loader.py::test_load_signed_integer
        ("-1", -1),
        ("+1", 1),
        # dynaconf tests/test_env_loader.py::test_boolean_fix
        ("True", True),
        ("False", False),
        # dynaconf tests/test_env_loader.py::test_load_dunder
        ("99", 99),
        ("{timeout=8}", {"timeout": 8}),
        ("{}", {}),
        ("[789, 101112]", [789, 101112]),
        ("{hello='world'}", {"hello": "world"}),
        ("{yes='no'}", {"yes": "no"}),
        ("bar", "bar"),
        ("other.module", "other.module"),
        # dynaconf tests/test_env_loader.py::test_env_loader (DYNACONF_HOSTNAME)
        ("host.com", "host.com"),
        # the issue's case, and what TOML cannot read
        ("6000", 6000),
        ("2.5", 2.5),
        ("true", True),
        ("", ""),
        ("not toml [", "not toml ["),
        ("1\nsneaky = 2", "1\nsneaky = 2"),  # one value only: a line break keeps the text
        ("[" * 5000 + "]" * 5000, "[" * 5000 + "]" * 5000),  # too deep: the text, no recursion
    ],
)
async def test_values_are_typed_as_dynaconf_types_them(value: str, expected: object) -> None:
    assert await load_data(Env("DYNACONF", environ={"DYNACONF_VALUE": value})) == {
        "value": expected
    }


async def test_dunder_nesting_is_typed() -> None:
    # dynaconf tests/test_env_loader.py::test_load_dunder: DATABASES__default__ARGS__timeout=99
    environ = {"DYNACONF_DATABASES__default__ARGS__timeout": "99"}
    data = await load_data(Env("DYNACONF", environ=environ))
    assert data == {"databases": {"default": {"args": {"timeout": 99}}}}


async def test_raw_keeps_strings_and_tokens_still_apply() -> None:
    environ = {"APP_PORT": "6000", "APP_N": "@int 5"}
    assert await load_data(Env("APP", environ=environ, raw=True)) == {"port": "6000", "n": "@int 5"}
    with pytest.raises(TypeError, match="raw must be True or False"):
        Env("APP", raw="yes")  # type: ignore[arg-type]


async def test_the_prefix_is_upper_cased_as_in_dynaconf() -> None:
    # dynaconf loaders/env_loader.py: prefix = prefix.upper()
    source = Env("myapp", environ={"MYAPP_DB__PORT": "6000", "myapp_other": "x"})
    assert source.prefix == "MYAPP_"
    assert await load_data(source) == {"db": {"port": 6000}}


async def test_a_port_from_the_environment_passes_gte_and_binds() -> None:
    # the issue's report: Validator("db.port", gte=1024) and a dataclass bind()
    from aioconfig import Validator, load
    from aioconfig.sources import Static

    env = Env("MYAPP", environ={"MYAPP_DB__PORT": "6000"})
    validators = [Validator("db.port", gte=1024)]
    async with load(Static({"db": {"port": 5432}}), env, validators=validators) as config:
        assert config["db.port"] == 6000
        assert config.snapshot.bind(Settings) == Settings(Db(6000))


# -- a .env file --------------------------------------------------------------------------------


async def test_dotenv_feeds_the_environment(tmp_path: Path) -> None:
    # dynaconf tests/.env and tests/test_env_loader.py::test_dotenv_loader
    path = tmp_path / ".env"
    path.write_text(
        "# DEFAULT\n"
        "DYNACONF_DOTENV_INT=@int 1\n"
        "DYNACONF_DOTENV_STR=hello\n"
        "DYNACONF_DOTENV_FLOAT=@float 4.2\n"
        'DYNACONF_DOTENV_JSON=@json ["1", "2"]\n'
        "BASE=/srv\n"
        "DYNACONF_DATA=${BASE}/data\n"
        "DYNACONF_BARE\n"
        "DYNACONF_PORT=1\n"
    )
    from aioconfig import load

    env = Env("DYNACONF", environ={"DYNACONF_PORT": "2"}, dotenv=path)
    async with load(env) as config:
        assert config["dotenv_int"] == 1
        assert config["dotenv_str"] == "hello"
        assert config["dotenv_float"] == 4.2
        assert config["dotenv_json"] == ("1", "2")
        assert config["data"] == "/srv/data"  # ${BASE} expanded
        assert "bare" not in config  # a bare key sets nothing
        assert config["port"] == 2  # the environment wins over the file
        assert config.history("data")[0].origin == f"DYNACONF_DATA ({path})"
        assert config.history("port")[0].origin == "DYNACONF_PORT"


async def test_a_missing_dotenv_gives_no_variables(tmp_path: Path) -> None:
    env = Env("APP", environ={"APP_A": "1"}, dotenv=tmp_path / "missing.env")
    assert await load_data(env) == {"a": 1}


async def test_dotenv_without_python_dotenv_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from aioconfig import SourceError

    monkeypatch.setitem(sys.modules, "dotenv", None)  # as if not installed
    env = Env("APP", environ={}, dotenv=tmp_path / ".env")
    with pytest.raises(SourceError, match=r"pip install 'aioconfig\[dotenv\]'"):
        await env.load(None)
