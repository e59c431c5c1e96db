from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from aioconfig.sources import NotModified, Payload, Static

pytestmark = pytest.mark.anyio


async def test_load() -> None:
    source = Static({"db": {"port": 5432}})
    assert source.name == "static"
    assert repr(source) == "Static(name='static')"
    result = await source.load(None)
    assert result == Payload({"db": {"port": 5432}}, 0)
    assert await source.load(0) == NotModified(0)
    assert await source.load("foreign") == Payload({"db": {"port": 5432}}, 0)


def test_name_and_options() -> None:
    source = Static({}, name="defaults")
    assert source.name == "defaults"
    assert source.optional is False
    assert source.can_watch is False


async def test_copies_at_construction() -> None:
    mapping: dict[str, Any] = {"db": {"hosts": ["a"]}}
    source = Static(mapping)
    mapping["db"]["hosts"].append("b")
    mapping["new"] = 1
    result = await source.load(None)
    assert isinstance(result, Payload)
    assert result.data == {"db": {"hosts": ["a"]}}


async def test_each_payload_is_its_own_copy() -> None:
    source = Static({"db": {"hosts": ["a"]}})
    first = await source.load(None)
    assert isinstance(first, Payload)
    first.data["db"]["hosts"].append("b")
    second = await source.load(None)
    assert isinstance(second, Payload)
    assert second.data == {"db": {"hosts": ["a"]}}


async def test_mappings_become_dicts() -> None:
    source = Static(MappingProxyType({"db": MappingProxyType({"port": 1})}))
    result = await source.load(None)
    assert isinstance(result, Payload)
    assert type(result.data) is dict
    assert type(result.data["db"]) is dict


def test_keys_must_be_strings() -> None:
    with pytest.raises(TypeError) as caught:
        Static({"db": {1: "x"}}, name="defaults")
    assert str(caught.value) == "defaults: keys must be strings, got 1 at 'db'"
    with pytest.raises(TypeError, match="at the top level"):
        Static({None: 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"at 'a\.b'"):
        Static({"a": {"b": [{2: 3}]}})


def test_not_a_mapping() -> None:
    with pytest.raises(TypeError, match="expected a mapping, got list"):
        Static([("a", 1)])  # type: ignore[arg-type]
