"""aioconfig.dynaconf.load: Dynaconf's constructor keywords, an aioconfig Config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aioconfig import Config, ValidationError
from aioconfig.dynaconf import Validator, load

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ENV_FOR_DYNACONF", "MYAPP_ENV", "DYNACONF_PORT"):
        monkeypatch.delenv(name, raising=False)


async def test_envless_mode(tmp_path: Path) -> None:
    # dynaconf tests/test_base.py::test_envless_mode (data and expected values)
    (tmp_path / "settings.toml").write_text(
        'foo = "bar"\nhello = "world"\ndefault = 1\n[databases.default]\nport = 8080\n'
    )
    settings = await load(settings_file="settings.toml")
    try:
        assert isinstance(settings, Config)
        assert settings["FOO"] == "bar"  # case-insensitive, as Dynaconf reads keys
        assert settings["hello"] == "world"
        assert settings["default"] == 1
        assert settings["databases.default.port"] == 8080
    finally:
        await settings.aclose()


async def test_the_constructor_users_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.toml").write_text(
        "[default]\nname = 'app'\n[default.db]\nhost = 'localhost'\nport = 5432\n"
        "[production]\n[production.db]\nhost = 'db.prod'\n"
    )
    (tmp_path / "settings.local.toml").write_text("[default]\nlocal = true\n")
    # dynaconf tests/.env (DYNACONF_DOTENV_INT=@int 1, DYNACONF_DOTENV_STR=hello)
    (tmp_path / ".env").write_text(
        "MYAPP_ENV=production\nMYAPP_DOTENV_INT=@int 1\nMYAPP_DOTENV_STR=hello\n"
    )
    monkeypatch.setenv("MYAPP_DB__PORT", "6000")
    async with load(
        settings_files=["settings.toml", "missing.toml"],  # a missing file is skipped
        envvar_prefix="myapp",
        environments=True,
        env_switcher="MYAPP_ENV",
        load_dotenv=True,
        validators=[Validator("db.port", gte=1024)],
        DEBUG=False,
        refresh_interval=60,
    ) as settings:
        assert settings.environment == "production"  # the switch came from .env
        assert settings["db.host"] == "db.prod"
        assert settings["db.port"] == 6000
        assert settings["local"] is True
        assert settings["dotenv_int"] == 1
        assert settings["dotenv_str"] == "hello"
        assert settings["debug"] is False


async def test_validation_failure_is_a_validation_error(tmp_path: Path) -> None:
    # dynaconf tests/test_validators.py::test_validate_all: every failure, one error
    (tmp_path / "settings.toml").write_text("version = 1\n")
    custom_msg = "You cannot set {name} to {value} in env {env}"
    with pytest.raises(ValidationError) as caught:
        await load(
            settings_files="settings.toml",
            validators=[
                Validator("version", ne=1, messages={"operations": custom_msg}),
                Validator("blablabla", must_exist=True),
            ],
        )
    message = str(caught.value)
    assert custom_msg.format(name="version", value="1", env="DEVELOPMENT") in message
    assert "blablabla" in message
    assert len(caught.value.details) == 2


async def test_settings_files_as_one_string_and_a_glob(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "a.toml").write_text("a = 1\n")
    (tmp_path / "conf" / "b.toml").write_text("b = 2\n")
    (tmp_path / "c.json").write_text('{"c": 3}')
    async with load(settings_files="conf/*.toml;c.json", root_path=tmp_path) as settings:
        assert settings.snapshot.to_dict() == {"a": 1, "b": 2, "c": 3}


def test_a_misspelled_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'settings_fils'; did you mean 'settings_files'"):
        load(settings_fils=["settings.toml"])
    with pytest.raises(TypeError, match="'envar_prefix'; did you mean 'envvar_prefix'"):
        load(envar_prefix="MYAPP")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("includes", ["x.toml"], "list the files in settings_files="),
        ("redis_enabled", True, "no Redis source"),
        ("fresh_vars", ["X"], "every key is fresh"),
        ("apply_default_on_none", True, "give it to each Validator"),
        ("envvar_prefix", False, "is not supported: name a prefix"),
    ],
)
def test_unsupported_dynaconf_keywords_say_so(name: str, value: object, reason: str) -> None:
    with pytest.raises(TypeError, match=reason):
        options: dict[str, Any] = {name: value}
        load(**options)
