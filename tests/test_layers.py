"""Layered settings: environments, casts, converters, merge tokens, @format, case folding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aioconfig import ClosedError, ParseError, ValidationError, Validator, load
from aioconfig._cache import FileCache
from aioconfig._layers import _REGISTRY, add_converter, prepare, resolve_tokens
from aioconfig._secrets import Secret
from aioconfig.sources import Env, File, Static
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio

SETTINGS = """
[default]
name = "app"
db = { host = "localhost", port = 5432 }

[development]
debug = true

[production]
db = { host = "db.prod" }
debug = false

[global]
owner = "platform"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS)
    return path


# ---------------------------------------------------------------- environments


async def test_the_active_environment_is_default_then_its_section_then_global(
    settings: Path,
) -> None:
    async with load(settings, environments=True, env="production", mode="manual") as config:
        assert config.snapshot.to_dict() == {
            "name": "app",
            "db": {"host": "db.prod", "port": 5432},
            "debug": False,
            "owner": "platform",
        }
        assert config.environment == "production"


async def test_the_environment_comes_from_the_prefix_variable(
    settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYAPP_ENV", "PRODUCTION")  # section names compare case-insensitively
    sources = (File(settings, environments=True), Env("MYAPP", environ={}))
    async with load(*sources, mode="manual") as config:
        assert config["db.host"] == "db.prod"
    monkeypatch.setenv("DEPLOY_ENV", "development")
    async with load(*sources, env_var="DEPLOY_ENV", mode="manual") as config:
        assert config["debug"] is True and config.environment == "development"


async def test_development_is_the_default_environment(
    settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIOCONFIG_ENV", raising=False)
    async with load(settings, environments=True, mode="manual") as config:
        assert config["debug"] is True and config["db.host"] == "localhost"


async def test_a_file_can_opt_out_of_environments(settings: Path, tmp_path: Path) -> None:
    plain = tmp_path / "extra.json"
    plain.write_text(json.dumps({"production": {"note": "a key, not a section"}}))
    sources = (settings, File(plain, environments=False))
    async with load(*sources, environments=True, env="production", mode="manual") as config:
        assert config["production.note"] == "a key, not a section"
        assert config["db.host"] == "db.prod"


async def test_a_section_that_is_not_a_table_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("default = 3\n")
    with pytest.raises(Exception, match=r"environment section \[default\] must be a table"):
        await load(path, environments=True, mode="manual")


def test_env_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="env must be a non-empty environment name"):
        load(Static({}), env=" ")


# ---------------------------------------------------------------- casts


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("@int 42", 42),
        ("@int  -7 ", -7),
        ("@float 2.5", 2.5),
        ("@bool true", True),
        ("@bool Off", False),
        ('@json {"a": [1, 2]}', {"a": [1, 2]}),
        ("@none", None),
        ("@none whatever", None),
        ("@str @int 5", "@int 5"),
        ("@handle", "@handle"),  # not a token: left alone
        ("plain", "plain"),
    ],
)
def test_casts(raw: str, value: Any) -> None:
    assert prepare({"k": raw}, "src").data == {"k": value}


async def test_a_failed_cast_names_the_variable_and_masks_secrets() -> None:
    environ = {"MYAPP_DB__PORT": "@int forty", "MYAPP_API_KEY": "@int hunter2"}
    with pytest.raises(Exception, match=r"db\.port \(MYAPP_DB__PORT\): @int 'forty' failed"):
        await load(Env("MYAPP", environ={"MYAPP_DB__PORT": "@int forty"}), mode="manual")
    with pytest.raises(Exception, match=r"api_key \(MYAPP_API_KEY\): @int \*{10} failed") as info:
        await load(Env("MYAPP", environ=environ), mode="manual")
    assert "hunter2" not in str(info.value)


async def test_env_vars_carry_casts() -> None:
    environ = {"MYAPP_DB__PORT": "@int 6543", "MYAPP_FLAGS": '@json ["a", "b"]'}
    async with load(Env("MYAPP", environ=environ), mode="manual") as config:
        assert config["db.port"] == 6543
        assert config["flags"] == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("@int forty", "@int 'forty' failed: not an integer"),
        ("@bool maybe", "@bool 'maybe' failed: not a boolean"),
        ("@json {nope", "@json '{nope' failed: not JSON"),
    ],
)
async def test_a_failed_cast_names_the_source_and_key(raw: str, problem: str) -> None:
    source = MutableSource({"db": {"port": 1}})
    async with load(source, mode="manual") as config:
        source.set({"db": {"port": raw}})
        result = await config.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert str(result.error).startswith(f"mutable: db.port: {problem}")
        assert config["db.port"] == 1  # the last good value keeps serving


async def test_a_failed_cast_at_start_up_fails_the_load() -> None:
    with pytest.raises(Exception, match=r"static: port: @int 'x' failed: not an integer"):
        await load(Static({"port": "@int x"}), mode="manual")


def test_casts_apply_inside_lists() -> None:
    assert prepare({"k": ["@int 1", "@float 2", "x"]}, "src").data == {"k": [1, 2.0, "x"]}


@pytest.fixture
def registry() -> Iterator[None]:
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


async def test_converters_global_and_per_config(registry: None) -> None:
    add_converter("@upper", str.upper)
    async with load(
        Static({"a": "@upper hi", "b": "@rev abc"}),
        converters={"@rev": lambda text: text[::-1]},
        mode="manual",
    ) as config:
        assert (config["a"], config["b"]) == ("HI", "cba")
    async with load(Static({"b": "@rev abc"}), mode="manual") as config:
        assert config["b"] == "@rev abc"  # another Config does not have it


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("upper", "a converter name is '@' and a word"),
        ("@int", "@int is built in and cannot be replaced"),
        ("@merge", "@merge is built in"),
    ],
)
def test_converter_names_are_checked(name: str, error: str, registry: None) -> None:
    with pytest.raises(ValueError, match=error):
        add_converter(name, str)
    with pytest.raises(ValueError, match=error):
        load(Static({}), converters={name: str})


async def test_a_converter_that_raises_is_a_cast_error(registry: None) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("secret detail")

    with pytest.raises(Exception, match=r"static: a: @broken 'x' failed: RuntimeError") as info:
        await load(Static({"a": "@broken x"}), converters={"@broken": broken}, mode="manual")
    assert "secret detail" not in str(info.value)


# ---------------------------------------------------------------- merge tokens


async def test_merge_appends_to_the_list_earlier_sources_give() -> None:
    base = Static({"plugins": ["a", "b"], "db": {"opts": [1]}}, name="base")
    over = Static({"plugins": '@merge ["c"]', "db": {"opts": ["@merge", 2, 3]}}, name="over")
    async with load(base, over, mode="manual") as config:
        assert config["plugins"] == ("a", "b", "c")
        assert config["db.opts"] == (1, 2, 3)


async def test_merge_without_an_earlier_list_is_just_the_list() -> None:
    async with load(Static({"plugins": '@merge ["c"]'}), mode="manual") as config:
        assert config["plugins"] == ("c",)


async def test_del_removes_what_earlier_sources_set() -> None:
    base = Static({"db": {"host": "x", "port": 1}, "debug": True}, name="base")
    over = Static({"db": {"port": "@del"}, "debug": "@del"}, name="over")
    async with load(base, over, mode="manual") as config:
        assert config.snapshot.to_dict() == {"db": {"host": "x"}}


def test_resolving_tokens_never_changes_the_inputs() -> None:
    low = prepare({"a": [1], "b": {"c": 1}}, "low")
    high = prepare({"a": "@merge [2]", "b": {"c": "@del"}}, "high")
    merged = resolve_tokens([low, high])
    assert merged == [{"a": [1], "b": {}}, {"a": [1, 2], "b": {}}]
    assert low.data == {"a": [1], "b": {"c": 1}}


# ---------------------------------------------------------------- @format


async def test_format_fills_in_other_keys_once_per_snapshot() -> None:
    source = MutableSource(
        {
            "db": {"host": "h", "port": 5432},
            "dsn": "@format postgres://{db.host}:{db.port}/app",
            "url": "@format {dsn}?ssl=1",
            "width": "@int @format {db.port}0",
            "braces": "@format {{literal}} {db.port:06d}",
        }
    )
    async with load(source, mode="manual") as config:
        assert config["dsn"] == "postgres://h:5432/app"
        assert config["url"] == "postgres://h:5432/app?ssl=1"
        assert config["width"] == 54320
        assert config["braces"] == "{literal} 005432"
        data = config.snapshot.to_dict()
        data["db"]["host"] = "other"
        source.set(data | {"dsn": "@format postgres://{db.host}:{db.port}/app"})
        result = await config.refresh(force=True)
        assert result.keys == {"db.host", "dsn"}
        assert config["dsn"] == "postgres://other:5432/app"


async def test_an_unchanged_template_is_not_a_change() -> None:
    source = MutableSource({"a": 1, "b": "@format {a}"})
    async with load(source, mode="manual") as config:
        source.set({"a": 1, "b": "@format {a}", "c": 2})
        result = await config.refresh(force=True)
        assert result.keys == {"c"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"a": "@format {b}", "b": "@format {a}"}, "@format refers to itself (a -> b -> a)"),
        ({"a": "@format {missing}"}, "@format refers to 'missing', which is not set"),
        ({"a": "@format {b.__class__}", "b": 1}, "refers to 'b.__class__', which is not set"),
        ({"a": "@format {b[0]}", "b": [1]}, "@format takes plain {dotted.key} references"),
        ({"a": "@format {b!r}", "b": 1}, "@format takes plain {dotted.key} references"),
        ({"a": "@format {"}, "bad @format template"),
    ],
)
async def test_bad_templates_are_errors(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(Exception, match="static: a: ") as info:
        await load(Static(data), mode="manual")
    assert problem in str(info.value)


async def test_a_later_plain_value_wins_over_an_earlier_template() -> None:
    base = Static({"a": "@format {b}", "b": 1}, name="base")
    over = Static({"a": "plain"}, name="over")
    async with load(base, over, mode="manual") as config:
        assert config["a"] == "plain"


# ---------------------------------------------------------------- case


async def test_case_insensitive_lookup_and_merging() -> None:
    base = Static({"DB": {"Host": "x", "PORT": 1}}, name="base")
    env = Env("MYAPP", environ={"MYAPP_DB__HOST": "y"})
    async with load(base, env, case_sensitive=False, mode="manual") as config:
        assert config["db.host"] == config["DB.HOST"] == config.get("Db.Host") == "y"
        assert "DB.port" in config and config.snapshot["db.PORT"] == 1
        assert config.snapshot.to_dict() == {"db": {"host": "y", "port": 1}}
    async with load(base, env, mode="manual") as config:
        assert config.snapshot.to_dict() == {"DB": {"Host": "x", "PORT": 1}, "db": {"host": "y"}}


# ---------------------------------------------------------------- secrets


def test_secret_values_are_unwrapped_and_remembered() -> None:
    layer = prepare({"db": {"dsn": Secret("postgres://u:p@h/db")}}, "src")
    assert layer.data == {"db": {"dsn": "postgres://u:p@h/db"}}
    assert layer.secrets == {"db.dsn"}


def test_data_without_tokens_is_used_as_it_is() -> None:
    data = {"a": {"b": [1, "x"]}}
    assert prepare(data, "src").data is data


# ---------------------------------------------------------------- validators


async def test_validators_apply_defaults_and_casts_to_the_snapshot() -> None:
    validators = [
        Validator("db.port", default=5432, is_type_of=int),
        Validator("timeout", cast=float, gte=0),
        Validator("db.pool", default={"size": 5}),
    ]
    source = MutableSource({"db": {"host": "h"}, "timeout": "2"})
    async with load(source, validators=validators, mode="manual") as config:
        assert config["db.port"] == 5432 and config["timeout"] == 2.0
        assert config["db.pool.size"] == 5 and config["db"]["port"] == 5432
        source.set({"db": {"host": "h2"}, "timeout": "2"})
        result = await config.refresh(force=True)
        assert result.keys == {"db.host"}  # defaults and casts that stayed the same did not change


async def test_a_failing_start_up_lists_every_failure() -> None:
    validators = [
        Validator("db.host", must_exist=True),
        Validator("db.port", gte=1024),
        Validator("db.password", len_min=12),
    ]
    data = {"db": {"port": 80, "password": "hunter2"}}
    with pytest.raises(Exception, match="3 validation failures") as info:
        await load(Static(data), validators=validators, mode="manual")
    text = str(info.value)
    assert "db.host" in text and "db.port" in text and "db.password" in text
    assert "hunter2" not in text


async def test_an_update_failing_validation_is_rejected_and_reported() -> None:
    errors: list[Exception] = []
    source = MutableSource({"workers": 4})
    validators = [Validator("workers", is_type_of=int, lte=64)]
    async with (
        load(
            source, validators=validators, on_refresh_error=errors.append, mode="manual"
        ) as config,
        config.changes() as events,
    ):
        source.set({"workers": 1000})
        result = await config.refresh(force=True)
        assert isinstance(result.error, ValidationError)
        (failure,) = result.error.details
        assert (failure.key, failure.rule, failure.value) == ("workers", "lte", "1000")
        assert config["workers"] == 4
        assert errors == [result.error]
        event = await anext(events)
        assert event.error is result.error


async def test_validators_can_be_limited_to_environments(settings: Path) -> None:
    validators = [Validator("debug", eq=False, env="production")]
    async with load(settings, environments=True, env="development", validators=validators):
        pass
    async with load(settings, environments=True, env="production", validators=validators):
        pass
    with pytest.raises(Exception, match="debug"):
        await load(
            settings,
            environments=True,
            env="development",
            validators=[Validator("debug", eq=False)],
        )


def test_validators_must_be_validators() -> None:
    with pytest.raises(TypeError, match=r"validators must be aioconfig\.Validator objects"):
        load(Static({}), validators=[lambda snapshot: None])  # type: ignore[list-item]


# ---------------------------------------------------------------- history


async def test_history_lists_every_layer_newest_first(settings: Path) -> None:
    environ = {"MYAPP_DB__PORT": "@int 3", "MYAPP_API_TOKEN": "t0k"}
    sources = (
        File(settings, environments=True),
        Env("MYAPP", environ=environ),
        Static({"dsn": "@format {db.host}:{db.port}", "pw": Secret("x")}),
    )
    validators = [Validator("db.user", default="app")]
    async with load(*sources, validators=validators, env="production", mode="manual") as config:
        port = config.history("db.port")
        assert [(e.kind, e.source, e.origin, e.value, e.version, e.serving) for e in port] == [
            ("env", "env:MYAPP_*", "MYAPP_DB__PORT", 3, 1, True),
            ("file", str(settings), f"{settings} [default]", 5432, None, False),
        ]
        assert config.history("db.host")[0].origin == f"{settings} [production]"
        dsn = config.history("dsn")
        assert [(e.source, e.value) for e in dsn] == [
            ("@format", "db.prod:3"),
            ("static", "@format {db.host}:{db.port}"),
        ]
        assert [(e.kind, e.value) for e in config.history("db.user")] == [("validators", "app")]
        assert config.history("api_token")[0].value == "**********"
        assert config.history("api_token", reveal=True)[0].value == "t0k"
        assert config.history("pw")[0].value == "**********"
        assert config.history("nope") == []
        text = config.explain("db.port")
        assert "MYAPP_DB__PORT" in text and "[default]" in text and "*" in text
        assert "t0k" not in config.explain("api_token")
        assert config.explain("nope") == "nope: not set by any source"


async def test_secret_patterns_are_configurable(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json")
    data: dict[str, Any] = {"db": {"dsn": "postgres://u:p@h/db", "password": "pw"}, "n": "@int x"}
    with pytest.raises(Exception, match=r"n: @int \*{10} failed"):
        await load(Static(data), secret_patterns=["dsn", "n"], mode="manual")
    data["n"] = 1
    async with load(Static(data), secret_patterns=["dsn"], cache=cache, mode="manual") as config:
        assert config.snapshot.is_secret("db.dsn") and not config.snapshot.is_secret("db.password")
        assert config.history("db.dsn")[0].value == "**********"
        assert config.history("db.password")[0].value == "pw"
    stored = (tmp_path / "cache.json").read_text()
    assert "postgres://" not in stored and '"pw"' in stored


async def test_history_says_which_version_brought_the_serving_value() -> None:
    source = MutableSource({"a": 1, "b": 1})
    async with load(source, mode="manual") as config:
        source.set({"a": 2, "b": 1})
        await config.refresh(force=True)
        assert config.history("a")[0].version == 2
        assert config.history("b")[0].version == 1


async def test_history_on_a_closed_config_raises() -> None:
    config = load(Static({"a": 1}), mode="manual")
    async with config:
        pass
    with pytest.raises(ClosedError):
        config.history("a")


async def test_merge_tokens_work_across_environment_sections(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[default]\nplugins = ["a"]\nold = 1\n'
        '[production]\nplugins = ["@merge", "b"]\nold = "@del"\nextra = "@merge [\\"x\\"]"\n'
    )
    earlier = Static({"extra": ["e"], "plugins": ["never"]}, name="earlier")
    async with load(earlier, path, environments=True, env="production", mode="manual") as config:
        # [production] merges with [default]; [default] replaced the earlier source's list.
        assert config["plugins"] == ("a", "b")
        assert "old" not in config
        # No section below sets "extra": the merge reaches the earlier source.
        assert config["extra"] == ("e", "x")


# ---------------------------------------------------------------- Dynaconf's habits (issue 13)


async def test_a_failing_start_up_is_caught_as_a_validation_error() -> None:
    # Dynaconf users write `except ValidationError as e: e.details` around start-up
    from aioconfig import InitialLoadError, InitialValidationError

    validators = [Validator("db.port", gte=1024), Validator("db.host", must_exist=True)]
    with pytest.raises(ValidationError) as caught:
        await load(Static({"db": {"port": 80}}), validators=validators)
    error = caught.value
    assert isinstance(error, InitialLoadError) and isinstance(error, InitialValidationError)
    assert [(f.key, f.rule) for f in error.details] == [
        ("db.port", "gte"),
        ("db.host", "must_exist"),
    ]
    assert "db.port must gte 1024 but it is 80 in env DEVELOPMENT" in str(error)
    assert isinstance(error.errors[0], ValidationError)


async def test_merge_takes_a_toml_inline_table() -> None:
    # dynaconf tests/test_env_loader.py::test_load_dunder:
    # DYNACONF_DATABASES__default__ARGS='@merge {retries=10}' over ARGS={timeout=99}
    base = Static({"databases": {"default": {"args": {"timeout": 99}, "ports": [123, 456]}}})
    environ = {
        "DYNACONF_DATABASES__default__ARGS": "@merge {retries=10}",
        "DYNACONF_DATABASES__default__PORTS": "@merge [789, 101112]",
    }
    async with load(base, Env("DYNACONF", environ=environ)) as config:
        assert config["databases.default.args"] == {"timeout": 99, "retries": 10}
        assert config["databases.default.ports"] == (123, 456, 789, 101112)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # dynaconf tests/test_env_loader.py (DYNACONF_ADICT, DYNACONF_ALIST)
        ('@json {"key": "value", "int": 42}', {"key": "value", "int": 42}),
        ('@json ["item1", "item2", "item3", 123]', ["item1", "item2", "item3", 123]),
        # dynaconf utils/parse_conf.py::_safe_json_parse's docstring: Python-literal dicts
        ("@json {'key': 'value'}", {"key": "value"}),
        ("@json {'message': \"Hello, World!\"}", {"message": "Hello, World!"}),
        ("@json {'a': True, 'b': None, 'c': (1, 2)}", {"a": True, "b": None, "c": [1, 2]}),
    ],
)
def test_json_takes_what_dynaconf_takes(text: str, expected: Any) -> None:
    assert prepare({"v": text}, "test").data == {"v": expected}


@pytest.mark.parametrize(
    "text",
    ["@json __import__('os').system('true')", "@json {'a': b'bytes'}", "@json " + "[" * 500],
)
def test_json_never_runs_code(text: str) -> None:
    with pytest.raises(ParseError, match="v: @json"):
        prepare({"v": text}, "test")
