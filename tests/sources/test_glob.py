"""Glob: every file a pattern matches, sorted, merged, re-globbed at each load."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioconfig import InitialLoadError, load
from aioconfig.sources import Glob, NotModified, Payload

pytestmark = pytest.mark.anyio


async def test_files_merge_in_sorted_order_and_history_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "20-prod.toml").write_text('[db]\nhost = "db.prod"\n')
    (tmp_path / "10-base.toml").write_text('name = "app"\n[db]\nhost = "localhost"\nport = 5432\n')
    (tmp_path / "notes.txt").write_text("not matched")
    async with load(str(tmp_path / "*.toml"), mode="manual") as config:
        assert config.snapshot.to_dict() == {"name": "app", "db": {"host": "db.prod", "port": 5432}}
        assert config.history("db.host")[0].origin == str(tmp_path / "20-prod.toml")
        assert config.history("db.port")[0].origin == str(tmp_path / "10-base.toml")
        # a new file is picked up at the next refresh
        (tmp_path / "30-extra.toml").write_text("workers = 4\n")
        await config.refresh(force=True)
        assert config["workers"] == 4
        assert config.history("workers")[0].origin == str(tmp_path / "30-extra.toml")
        # and a removed one is gone
        (tmp_path / "20-prod.toml").unlink()
        await config.refresh(force=True)
        assert config["db.host"] == "localhost"


async def test_an_unchanged_set_of_files_is_not_modified(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1}')
    source = Glob(tmp_path / "*.json")
    first = await source.load(None)
    assert isinstance(first, Payload)
    again = await source.load(first.token)
    assert isinstance(again, NotModified)
    (tmp_path / "a.json").write_text('{"a": 2, "b": 3}')
    changed = await source.load(again.token)
    assert isinstance(changed, Payload) and changed.data == {"a": 2, "b": 3}


async def test_no_match_is_an_empty_configuration(tmp_path: Path) -> None:
    # dynaconf tests/test_base.py::test_load_file_missing_glob_with_silent_false: an unmatched
    # glob does not raise
    source = Glob(tmp_path / "*.toml")
    result = await source.load(None)
    assert isinstance(result, Payload) and result.data == {}


async def test_a_broken_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1}')
    (tmp_path / "b.json").write_text('{"a": ')
    with pytest.raises(InitialLoadError, match=r"b\.json"):
        await load(str(tmp_path / "*.json"))


async def test_recursive_globs_and_environments(tmp_path: Path) -> None:
    (tmp_path / "conf" / "sub").mkdir(parents=True)
    (tmp_path / "conf" / "a.toml").write_text("[default]\nx = 1\n[production]\nx = 2\n")
    (tmp_path / "conf" / "sub" / "b.toml").write_text("[production]\ny = 3\n")
    pattern = str(tmp_path / "conf" / "**" / "*.toml")
    async with load(pattern, environments=True, env="production") as config:
        assert config.snapshot.to_dict() == {"x": 2, "y": 3}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        Glob("*.conf", format="xml")  # type: ignore[arg-type]
    assert repr(Glob("conf/*.toml")) == "Glob('conf/*.toml')"
