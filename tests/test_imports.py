"""What a configuration imports: only what it uses, each in a new interpreter.

A configuration of files alone must not pay for aiohttp (about half of the old start-up), PyYAML,
pydantic or watchfiles; each comes in with the first source, document, ``bind`` or watch that
needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aioconfig.sources

HEAVY = ("aiohttp", "yaml", "pydantic", "watchfiles", "opentelemetry.metrics")
EVENT_LOOP = ("asyncio", "anyio")


def imported_after(script: str, cwd: Path, names: tuple[str, ...] = HEAVY) -> dict[str, bool]:
    """Run ``script`` in a new interpreter; which of ``names`` are in its ``sys.modules`` after."""
    code = textwrap.dedent(script) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{name: name in sys.modules for name in {names!r}}}))
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(aioconfig.__file__).parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    (tmp_path / "settings.toml").write_text('[app]\nname = "billing"\n')
    (tmp_path / "extra.yaml").write_text("app:\n  colour: blue\n")
    return tmp_path


def test_import_and_a_file_only_load_leave_the_heavy_libraries_out(settings: Path) -> None:
    loaded = imported_after(
        """
        import dataclasses
        import anyio
        import aioconfig
        from aioconfig.sources import Env, File

        @dataclasses.dataclass
        class Settings:
            app: dict

        async def main():
            async with aioconfig.load(File("settings.toml", watch=False), Env("MYAPP")) as c:
                assert c["app.name"] == "billing"
                assert c.bind(Settings).app["name"] == "billing"

        anyio.run(main)
        """,
        settings,
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_each_library_comes_in_with_the_first_use_that_needs_it(settings: Path) -> None:
    loaded = imported_after(
        """
        import anyio, pydantic_core  # pydantic_core alone is not pydantic
        import aioconfig
        from aioconfig.sources import File

        async def main():
            async with aioconfig.load(File("settings.toml"), File("extra.yaml")) as c:
                assert c["app.colour"] == "blue"

        anyio.run(main)
        """,
        settings,
    )
    expected = dict.fromkeys(HEAVY, False) | {"yaml": True, "watchfiles": True}
    assert loaded == expected


def test_a_network_source_brings_aiohttp_in(settings: Path) -> None:
    loaded = imported_after(
        """
        import aioconfig
        from aioconfig.sources import Http
        Http("http://127.0.0.1:9/settings.json")
        """,
        settings,
    )
    assert loaded["aiohttp"] is True


def test_the_command_line_reads_a_file_without_the_network_stack(settings: Path) -> None:
    loaded = imported_after(
        """
        import sys
        from aioconfig._cli import main
        assert main(["-s", "settings.toml", "get", "app.name"]) == 0
        """,
        settings,
    )
    assert loaded["aiohttp"] is False


def test_the_command_line_reads_local_sources_without_an_event_loop(settings: Path) -> None:
    loaded = imported_after(
        """
        from aioconfig._cli import main
        assert main(["-s", "settings.toml", "get", "app.name"]) == 0
        assert main(["-s", "settings.toml", "-s", "env:MYAPP", "explain", "app.name"]) == 0
        """,
        settings,
        (*EVENT_LOOP, "aiohttp"),
    )
    assert loaded == {"asyncio": False, "anyio": False, "aiohttp": False}


def test_the_lazy_names_are_the_classes_and_unknown_names_still_fail() -> None:
    from aioconfig.sources._configcat import ConfigCat
    from aioconfig.sources._etcd import Etcd
    from aioconfig.sources._http import Http

    assert aioconfig.sources.Http is Http
    assert aioconfig.sources.Etcd is Etcd
    assert aioconfig.sources.ConfigCat is ConfigCat
    assert {"ConfigCat", "Etcd", "Http", "File"} <= set(dir(aioconfig.sources))
    with pytest.raises(AttributeError, match="Nope"):
        aioconfig.sources.Nope  # noqa: B018 - the look-up is the test
    with pytest.raises(ImportError):
        exec("from aioconfig.sources import Nope", {})


def test_import_aioconfig_brings_no_event_loop(settings: Path) -> None:
    loaded = imported_after(
        """
        import aioconfig
        from aioconfig import (
            ConfigError, Secret, Snapshot, Validator, WatchKey, add_converter, load_validators
        )
        """,
        settings,
        EVENT_LOOP,
    )
    assert loaded == dict.fromkeys(EVENT_LOOP, False)


def test_the_engine_s_names_come_on_first_use_and_unknown_names_still_fail() -> None:
    from aioconfig._cache import FileCache
    from aioconfig._config import Config
    from aioconfig._events import ChangeEvent
    from aioconfig._load import load

    assert aioconfig.Config is Config
    assert aioconfig.load is load
    assert aioconfig.ChangeEvent is ChangeEvent
    assert aioconfig.FileCache is FileCache
    assert set(aioconfig.__all__) <= set(dir(aioconfig))
    star: dict[str, object] = {}
    exec("from aioconfig import *", star)
    assert set(aioconfig.__all__) <= set(star)
    with pytest.raises(AttributeError, match="Nope"):
        aioconfig.Nope  # noqa: B018 - the look-up is the test
    with pytest.raises(ImportError):
        exec("from aioconfig import Nope", {})
