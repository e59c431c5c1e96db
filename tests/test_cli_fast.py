"""The command line's fast path: one-shot commands over local sources, read without an event loop.

Each command runs in this process twice, through the fast path and through the engine (the
``_FAST`` switch off), and must print the same thing, byte for byte, and exit the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aioconfig import Secret
from aioconfig.sources import Env, File, Glob, NotModified, Payload, SecretsDir, Source, Static


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "settings.toml").write_text('[db]\nhost = "localhost"\nport = 5432\n')
    (tmp_path / "extra.json").write_text('{"db": {"port": 6543}, "name": "inventory"}')
    (tmp_path / ".env").write_text("MYAPP_DB__USER=admin\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db__password").write_text("hunter2\n")
    return tmp_path


LOCAL: dict[str, Callable[[Path], Source]] = {
    "file": lambda tree: File(tree / "settings.toml"),
    "glob": lambda tree: Glob(f"{tree}/*.*"),
    "env": lambda tree: Env("MYAPP", environ={"MYAPP_DB__PORT": "1"}, dotenv=tree / ".env"),
    "secrets": lambda tree: SecretsDir(tree / "secrets"),
    "static": lambda tree: Static({"db": {"port": 5432}}),
}


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.anyio
async def test_a_local_source_reads_the_same_with_and_without_an_event_loop(
    tree: Path, name: str
) -> None:
    blocking, loaded = LOCAL[name](tree), LOCAL[name](tree)
    first = blocking._load_blocking(None)
    assert isinstance(first, Payload)
    expected = await loaded.load(None)
    assert isinstance(expected, Payload)
    assert first.data == expected.data
    assert first.token == expected.token
    assert isinstance(blocking._load_blocking(first.token), NotModified)
    if name == "secrets":
        assert first.data == {"db": {"password": Secret("hunter2")}}


def test_a_network_source_needs_the_event_loop() -> None:
    from aioconfig.sources import Http

    assert Http("http://127.0.0.1:9/settings.json")._load_blocking(None) is None
