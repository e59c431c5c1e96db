"""bind(): typed views of a snapshot, built once per version, rejecting misfit candidates."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

import pydantic
import pytest

from aioconfig import ClosedError, ValidationError, load
from aioconfig._bind import build
from aioconfig.sources import Static
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio


@dataclasses.dataclass(frozen=True)
class Database:
    host: str
    port: int = 5432
    password: str = ""


class Level(enum.Enum):
    DEBUG = "debug"
    INFO = "info"


@dataclasses.dataclass(frozen=True)
class Settings:
    db: Database
    workers: int
    ratio: float
    hosts: tuple[str, ...] = ()
    tags: list[str] = dataclasses.field(default_factory=list)
    level: Level = Level.INFO
    mode: Literal["fast", "safe"] = "safe"
    extra: dict[str, int] = dataclasses.field(default_factory=dict)
    note: str | None = None


class DbModel(pydantic.BaseModel):
    host: str
    port: int = 5432


class SettingsModel(pydantic.BaseModel):
    db: DbModel
    workers: int


DATA = {
    "db": {"host": "h", "password": "hunter2"},
    "workers": 4,
    "ratio": 1,
    "hosts": ["a", "b"],
    "tags": ("x",),
    "level": "debug",
    "extra": {"a": 1},
}


async def test_a_dataclass_view_is_typed_built_once_and_rebuilt_after_a_swap() -> None:
    source = MutableSource(DATA)
    async with load(source, mode="manual") as config:
        settings = config.bind(Settings)
        assert settings.db == Database("h", 5432, "hunter2")
        assert (settings.ratio, type(settings.ratio)) == (1.0, float)
        assert settings.hosts == ("a", "b") and settings.tags == ["x"]
        assert settings.level is Level.DEBUG and settings.mode == "safe"
        assert config.bind(Settings) is settings
        assert config.snapshot.bind(Settings) is settings
        source.set({**DATA, "workers": 8})
        await config.refresh(force=True)
        assert config.bind(Settings).workers == 8


async def test_a_pydantic_view() -> None:
    async with load(Static(DATA), mode="manual") as config:
        model = config.bind(SettingsModel)
        assert model.db.port == 5432 and model.workers == 4


def test_every_misfit_is_listed_and_secrets_are_masked() -> None:
    bad = {"db": {"port": True, "password": 7}, "workers": "4", "ratio": "x", "mode": "slow"}
    with pytest.raises(ValidationError) as info:
        build(bad, Settings)
    text = str(info.value)
    assert text.startswith("Settings: 6 problems:")
    for expected in (
        "db.host: required, not set",
        "db.port: expected int, got bool",
        "db.password: expected str, got int",
        "workers: expected int, got str",
        "ratio: expected float, got str",
        "mode: expected one of 'fast', 'safe', got str",
    ):
        assert expected in text
    assert {f.key: f.value for f in info.value.details}["db.password"] == "**********"


def test_pydantic_errors_become_failures() -> None:
    with pytest.raises(ValidationError, match=r"SettingsModel: 2 problems") as info:
        build({"db": {"port": "x"}, "workers": 1}, SettingsModel)
    assert [f.key for f in info.value.details] == ["db.host", "db.port"]


def test_bind_takes_models_only() -> None:
    with pytest.raises(TypeError, match="bind\\(\\) takes a pydantic model or a dataclass"):
        build({}, dict)


async def test_a_model_rejects_candidates_that_do_not_fit() -> None:
    source = MutableSource(DATA)
    async with load(source, models=[Settings], mode="manual") as config:
        ready = config.snapshot._bound[Settings]  # built before the swap
        assert config.bind(Settings) is ready
        source.set({**DATA, "workers": "many"})
        result = await config.refresh(force=True)
        assert isinstance(result.error, ValidationError)
        assert "workers: expected int, got str" in str(result.error)
        assert config.bind(Settings).workers == 4
    with pytest.raises(Exception, match="workers: expected int"):
        await load(Static({**DATA, "workers": "many"}), models=[Settings], mode="manual")


async def test_bind_on_a_config_that_is_not_open_raises() -> None:

    config = load(Static(DATA), mode="manual")
    with pytest.raises(ClosedError, match="not open"):
        config.bind(Settings)
    async with config:
        assert config.bind(Settings).workers == 4
    with pytest.raises(ClosedError, match="closed"):
        config.bind(Settings)
