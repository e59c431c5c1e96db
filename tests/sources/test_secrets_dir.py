"""SecretsDir: one file per key, as Docker and Kubernetes mount secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aioconfig import InitialLoadError, load
from aioconfig._secrets import MASK, Secret
from aioconfig.sources import NotModified, Payload, SecretsDir, Static

pytestmark = pytest.mark.anyio


async def test_each_file_is_a_secret_key(tmp_path: Path) -> None:
    # pydantic-settings' secrets_dir: the file's name is the key, its stripped text the value
    (tmp_path / "api_key").write_text("sk_live_123\n")
    (tmp_path / "DB__PASSWORD").write_text("hunter2")
    (tmp_path / ".hidden").write_text("skipped")
    (tmp_path / "subdir").mkdir()
    base = Static({"db": {"host": "localhost"}})
    async with load(base, SecretsDir(tmp_path)) as config:
        assert config["db.password"] == "hunter2"
        assert config["db.host"] == "localhost"
        assert config["api_key"] == "sk_live_123"
        assert config.snapshot.is_secret("db.password")
        assert config.history("db.password")[0].value == MASK
        assert config.history("db.password")[0].origin == str(tmp_path / "db__password")
        assert "hidden" not in config and "subdir" not in config


async def test_kubernetes_layout_is_followed(tmp_path: Path) -> None:
    # kubelet: ..2026_01_01/token, ..data -> ..2026_01_01, token -> ..data/token
    (tmp_path / "..2026_01_01").mkdir()
    (tmp_path / "..2026_01_01" / "token").write_text("t1")
    os.symlink("..2026_01_01", tmp_path / "..data")
    os.symlink("..data/token", tmp_path / "token")
    source = SecretsDir(tmp_path)
    first = await source.load(None)
    assert isinstance(first, Payload)
    assert first.data == {"token": Secret("t1")}
    assert isinstance(await source.load(first.token), NotModified)


async def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InitialLoadError, match="directory not found"):
        await load(SecretsDir(tmp_path / "missing"))
    async with load(Static({"a": 1}), SecretsDir(tmp_path / "missing", optional=True)) as config:
        assert config.snapshot.to_dict() == {"a": 1}
