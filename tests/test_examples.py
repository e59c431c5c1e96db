"""The examples run, and show a file edit without a restart."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from starlette.testclient import TestClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    """A copy of examples/settings.toml the test may edit."""
    return Path(shutil.copy(EXAMPLES / "settings.toml", tmp_path / "settings.toml"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


async def read_until(lines: BufferedByteReceiveStream, wanted: str, seen: list[str]) -> None:
    """Read lines into ``seen`` until one equals ``wanted``."""
    while True:
        line = (await lines.receive_until(b"\n", 65536)).decode()
        seen.append(line)
        if line == wanted:
            return


async def test_quickstart_prints_the_config_then_each_change(settings: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MYAPP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["MYAPP_DB__HOST"] = "db.internal"
    command = [sys.executable, str(EXAMPLES / "quickstart.py"), str(settings), "--seconds", "6"]
    process: Process = await anyio.open_process(command, env=env, stderr=subprocess.STDOUT)
    seen: list[str] = []
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(5):
            await read_until(lines, "# waiting for changes (Ctrl-C to stop)", seen)
        assert 'db.host = "db.internal"' in seen  # the environment overrides the file
        assert "db.port = 5432" in seen
        assert 'app.name = "inventory"' in seen
        assert seen == seen[:1] + sorted(seen[1:-1]) + seen[-1:]

        edit(settings, "port = 5432", "port = 6543")
        with anyio.fail_after(5):
            await read_until(lines, "db.port = 6543", seen)
        assert seen[-2] == "# version 2"

        with anyio.fail_after(10):  # --seconds 6 ends it cleanly
            assert await process.wait() == 0
    except BaseException:
        print("\n".join(seen))  # the output so far, tracebacks included
        raise
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


def import_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path, under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fastapi_app_serves_one_snapshot_and_follows_the_file(
    settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOCONFIG_SETTINGS", str(settings))
    example = import_example("fastapi_app")
    assert example.SETTINGS == settings

    with TestClient(example.app) as client:
        assert client.get("/").json() == {
            "version": 1,
            "app": "inventory",
            "db": {"host": "localhost", "port": 5432},
            "pool_max_size": 10,
            "features": {
                "new_checkout": False,
                "search_suggestions": True,
                "beta_users": ["alice", "bob"],
            },
        }
        edit(settings, "new_checkout = false", "new_checkout = true")

        async def changed() -> None:
            with anyio.fail_after(5):
                while True:
                    if client.get("/").json()["features"]["new_checkout"]:
                        return
                    await anyio.sleep(0.02)

        anyio.run(changed)
        assert client.get("/").json()["version"] == 2
