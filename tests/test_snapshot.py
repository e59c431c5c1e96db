from __future__ import annotations

import time

import pytest

from aioconfig import KeyNotFound, Snapshot
from aioconfig._merge import build


def make(data: dict[str, object], version: int = 1) -> Snapshot:
    root, flat, _ = build([data])
    return Snapshot(root, flat, version=version, sources=("test",))


def test_reads_by_dotted_path_and_by_nesting() -> None:
    snap = make({"db": {"port": 5432, "hosts": ["a", "b"]}})
    assert snap["db.port"] == 5432
    assert snap["db"]["port"] == 5432
    assert snap.get("db.port") == 5432
    assert snap.get("db.missing") is None
    assert snap.get("db.missing", 1) == 1
    assert "db.port" in snap
    assert "db.nope" not in snap
    assert snap["db.hosts"] == ("a", "b")
    assert list(snap) == ["db"]
    assert len(snap) == 1


def test_missing_key_names_the_key() -> None:
    snap = make({"a": 1})
    with pytest.raises(KeyNotFound) as info:
        snap["db.port"]
    assert str(info.value) == "no configuration key 'db.port'"
    assert isinstance(info.value, KeyError)


def test_snapshot_cannot_be_changed_by_a_reader() -> None:
    snap = make({"db": {"port": 1, "hosts": ["a"]}})
    with pytest.raises(TypeError):
        snap["db"]["port"] = 2
    with pytest.raises(AttributeError):
        snap["db.hosts"].append("b")
    with pytest.raises(TypeError):
        snap["x"] = 1  # type: ignore[index]


def test_to_dict_is_a_deep_mutable_copy() -> None:
    snap = make({"db": {"port": 1, "hosts": ["a"]}})
    copy = snap.to_dict()
    assert copy == {"db": {"port": 1, "hosts": ["a"]}}
    copy["db"]["hosts"].append("b")
    copy["db"]["port"] = 2
    assert snap["db.port"] == 1
    assert snap["db.hosts"] == ("a",)


def test_metadata_and_repr_never_show_values() -> None:
    before = time.time()
    snap = make({"password": "hunter2"}, version=7)
    assert snap.version == 7
    assert snap.sources == ("test",)
    assert before <= snap.created_at <= time.time()
    assert "hunter2" not in repr(snap)
    assert repr(snap) == "<Snapshot version=7 keys=1 sources=['test']>"


def test_equality_is_mapping_equality() -> None:
    assert make({"a": 1}) == {"a": 1}
    assert make({"a": 1}, version=1) == make({"a": 1}, version=2)
