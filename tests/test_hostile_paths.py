"""Issue 10: data no parser sees. Depth and ambiguous keys are checked once, in the pipeline,
for whatever any source hands over, on every path: start-up (where the cache takes over),
refresh (where the last good configuration stays) and the cache itself.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from etcd_server import EtcdClient, EtcdCluster, require_etcd

from aioconfig import FileCache, InitialLoadError, ParseError, Secret, load
from aioconfig._limits import MAX_DEPTH
from aioconfig.sources import Etcd, Payload, SecretsDir, Source, Static

pytestmark = pytest.mark.anyio


class Handed(Source):
    """A source of one's own: hands over exactly what it is given, no parser involved."""

    def __init__(self, data: Mapping[str, Any], *, name: str = "handed") -> None:
        self.data = data
        self._name = name
        self._version = 0

    @property
    def name(self) -> str:
        return self._name

    def set(self, data: Mapping[str, Any]) -> None:
        self.data = data

    async def load(self, token: Hashable | None) -> Payload:
        self._version += 1
        return Payload(self.data, self._version)


def nested(levels: int, leaf: Any = 1, kind: str = "dict") -> Any:
    """``levels`` containers inside one another, built without recursion."""
    node = leaf
    for _ in range(levels):
        node = {"a": node} if kind == "dict" else [node] if kind == "list" else (node,)
    return node


TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


# ---------------------------------------------------------------- depth, any source


@pytest.mark.parametrize(
    "data",
    [
        nested(600),
        nested(MAX_DEPTH + 1),
        {"x": nested(600, kind="list")},
        {"x": nested(600, kind="tuple")},
        {"x": [{"y": nested(600)}]},
        {"x": Secret(nested(600))},
        {".".join(["k"] * (MAX_DEPTH + 1)): 1},  # a key's dots are levels: 101 of them
        {"x": {".".join(["k"] * MAX_DEPTH): {}}},  # 1 + 100 levels, and a mapping below
    ],
    ids=["dict-600", "dict-101", "list", "tuple", "in-a-list", "secret", "dotted", "dotted-map"],
)
async def test_deep_data_from_any_source_is_a_parse_error(data: Mapping[str, Any]) -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(Handed(data), max_init_wait=60)
    (error,) = info.value.errors
    assert isinstance(error, ParseError) and not error.transient  # not retried for a minute
    assert info.value.timeout is None
    assert str(error) == f"handed: {TOO_DEEP}"


async def test_data_at_the_limit_is_served() -> None:
    dotted = ".".join(["k"] * MAX_DEPTH)
    data = {**nested(MAX_DEPTH), dotted: 1, "l": nested(MAX_DEPTH - 1, kind="list")}
    async with load(Handed(data), mode="manual") as config:
        assert config["a" + ".a" * (MAX_DEPTH - 1)] == 1
        assert config[dotted] == 1


async def test_deep_data_at_start_up_falls_back_to_the_cache(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json")
    async with load(Handed({"a": 1}), mode="manual", cache=cache):
        pass
    async with load(Handed(nested(600)), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache and config["a"] == 1
        assert str(config.statistics().last_error) == (
            f"could not load the configuration:\n  - handed: {TOO_DEEP}"
        )


async def test_deep_data_on_refresh_is_reported_and_the_last_good_stays() -> None:
    reported: list[Any] = []
    source = Handed({"a": 1})
    async with load(source, mode="manual", on_refresh_error=reported.append) as config:
        source.set({"a": nested(5000)})
        result = await config.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert str(result.error) == f"handed: {TOO_DEEP}"
        assert config["a"] == 1 and config.version == 1
        stats = config.statistics()
        assert stats.engine_errors == 0  # not "refresh crashed"
        assert stats.last_error is result.error
    assert [str(error) for error in reported] == [f"handed: {TOO_DEEP}"]


async def test_a_deep_cache_file_is_ignored_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    async with load(Handed({"a": 1}), mode="manual", cache=FileCache(path)):
        pass
    envelope = json.loads(path.read_text())
    envelope["data"] = {"a": nested(900)}  # json reads 900 levels; building them would not
    path.write_text(json.dumps(envelope))
    with pytest.raises(InitialLoadError, match="handed: nested more than"):
        await load(Handed(nested(600)), mode="manual", cache=FileCache(path))
    assert f"rejected: the cache: {TOO_DEEP}" in caplog.text


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_static_refuses_deep_data_when_made(levels: int) -> None:
    with pytest.raises(ValueError, match=f"^defaults: {TOO_DEEP}$"):
        Static(nested(levels), name="defaults")
    with pytest.raises(ValueError, match=f"^static: {TOO_DEEP}$"):
        Static({"x": nested(levels, kind="list")})
    assert Static(nested(MAX_DEPTH)).name == "static"


# ---------------------------------------------------------------- depth, sources that nest


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    require_etcd()
    with EtcdCluster() as cluster:
        yield cluster


async def test_a_deep_etcd_key_or_value_is_a_parse_error(etcd: EtcdCluster) -> None:
    async with EtcdClient(etcd.endpoints) as writer:
        key = "/deep-key/" + "/".join(["k"] * (MAX_DEPTH + 1))
        await writer.put(key, "1")
        with pytest.raises(InitialLoadError) as info:
            await load(Etcd(etcd.endpoints, prefix="/deep-key/"), max_init_wait=60)
        (error,) = info.value.errors
        assert isinstance(error, ParseError) and not error.transient
        assert f"has {MAX_DEPTH + 1} segments, more than the {MAX_DEPTH} allowed" in str(error)
        # 5,000 segments (a 10 KB key): the error names it cut short, not whole.
        await writer.put("/long-key/" + "/".join(["k"] * 5000), "1")
        with pytest.raises(InitialLoadError) as info:
            await load(Etcd(etcd.endpoints, prefix="/long-key/"), max_init_wait=60)
        message = str(info.value.errors[0])
        assert "has 5000 segments" in message and "/k/.../k/" in message
        assert len(message) < 600
        # A key of 60 segments holding a value 60 deep: each is fine, together too deep.
        await writer.put("/deep-value/" + "/".join(["k"] * 60), "[" * 60 + "]" * 60)
        source = Etcd(etcd.endpoints, prefix="/deep-value/", value_format="json")
        with pytest.raises(InitialLoadError, match=TOO_DEEP) as info:
            await load(source, max_init_wait=60)
        assert isinstance(info.value.errors[0], ParseError)


async def test_secrets_dir_file_names_cannot_nest_too_deep(tmp_path: Path) -> None:
    # With "." as the separator a 255-byte file name holds 128 segments; with "__", 85.
    (tmp_path / ".".join(["k"] * (MAX_DEPTH + 1))).write_text("1")
    with pytest.raises(InitialLoadError, match=f"more than the {MAX_DEPTH} allowed") as info:
        await load(SecretsDir(tmp_path, nested_separator="."), max_init_wait=60)
    assert isinstance(info.value.errors[0], ParseError)


async def test_secrets_dir_cannot_spell_a_key_twice(tmp_path: Path) -> None:
    (tmp_path / "db.password").write_text("one")
    (tmp_path / "db__password").write_text("two")
    with pytest.raises(InitialLoadError) as info:
        await load(SecretsDir(tmp_path))
    assert str(info.value.errors[0]) == (
        f"{tmp_path}: the key 'db.password' is spelled two ways: 'db.password' and "
        "'db' > 'password'; rename one"
    )


# ---------------------------------------------------------------- ambiguous keys

# One payload spelling one path twice. The message names the source and both spellings, as
# the source gives them.
ONE_SOURCE = [
    (
        {"a.b": {"c": 1}, "a": {"b.c": 2}},
        "the key 'a.b.c' is spelled two ways: 'a.b' > 'c' and 'a' > 'b.c'",
    ),
    ({"a.b.c": 3, "a.b": {"c": 1}}, "the key 'a.b.c' is spelled two ways: 'a.b.c' and 'a.b' > 'c'"),
    ({"a.b": 1, "a": {"b": 2}}, "the key 'a.b' is spelled two ways: 'a.b' and 'a' > 'b'"),
    ({"a.b": {"c": 1}, "a": {"b": {}}}, "the key 'a.b' is spelled two ways: 'a.b' and 'a' > 'b'"),
    ({"x": {"a": {"b": 2}, "a.b": 1}}, "the key 'x.a.b' is spelled two ways: 'x' > 'a' > 'b' and"),
]
GOOD = {"a": {"b": {"c": 0}}}


@pytest.mark.parametrize(("data", "problem"), ONE_SOURCE)
async def test_one_source_spelling_a_key_twice_is_refused_at_start_up(
    data: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(Handed(data))
    (error,) = info.value.errors
    assert isinstance(error, ParseError) and not error.transient
    assert str(error).startswith(f"handed: {problem}")
    assert str(error).endswith("; rename one")


@pytest.mark.parametrize(("data", "problem"), ONE_SOURCE)
async def test_one_source_spelling_a_key_twice_is_refused_on_refresh(
    data: dict[str, Any], problem: str
) -> None:
    source = Handed(GOOD)
    async with load(source, mode="manual") as config:
        source.set(data)
        result = await config.refresh(force=True)
        assert str(result.error).startswith(f"handed: {problem}")
        assert config["a.b.c"] == 0 and config.version == 1
        assert config.statistics().engine_errors == 0


@pytest.mark.parametrize(("data", "problem"), ONE_SOURCE)
async def test_one_source_spelling_a_key_twice_starts_from_the_cache(
    tmp_path: Path, data: dict[str, Any], problem: str
) -> None:
    cache = FileCache(tmp_path / "cache.json")
    async with load(Handed(GOOD), mode="manual", cache=cache):
        pass
    async with load(Handed(data), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache and config["a.b.c"] == 0
        assert problem in str(config.statistics().last_error)


@pytest.mark.parametrize(("data", "problem"), ONE_SOURCE)
async def test_a_cache_file_spelling_a_key_twice_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: dict[str, Any], problem: str
) -> None:
    path = tmp_path / "cache.json"
    async with load(Handed(GOOD), mode="manual", cache=FileCache(path)):
        pass
    envelope = json.loads(path.read_text())
    envelope["data"] = data  # as an older aioconfig, which let these through, may have left it
    path.write_text(json.dumps(envelope))
    with pytest.raises(InitialLoadError):
        await load(Handed({"": 1}), mode="manual", cache=FileCache(path))
    assert f"rejected: the cache: {problem}" in caplog.text


# Two sources, each spelling the path its own way: refused too, naming both sources.
ACROSS = [
    (
        {"a.b": {"c": 1}},
        {"a": {"b.c": 2}},
        "second: the key 'a.b.c' is spelled two ways: 'a' > 'b.c' in second and 'a.b' > 'c' in "
        "first; rename one",
    ),
    (
        {"a": {"b": {"c": 1}}},
        {"a.b.c": 2},
        "second: the key 'a.b.c' is spelled two ways: 'a.b.c' in second and 'a' > 'b' > 'c' in "
        "first; rename one",
    ),
    (
        {"a.b": {"c": 1}},
        {"a": {"b": {"d": 2}}},
        "second: the key 'a.b' is spelled two ways: 'a' > 'b' in second and 'a.b' in first; "
        "rename one",
    ),
]


@pytest.mark.parametrize(("first", "second", "message"), ACROSS)
async def test_two_sources_spelling_a_key_two_ways_on_every_path(
    tmp_path: Path, first: dict[str, Any], second: dict[str, Any], message: str
) -> None:
    with pytest.raises(InitialLoadError) as info:  # a fresh load
        await load(Handed(first, name="first"), Handed(second, name="second"))
    assert [str(e) for e in info.value.errors] == [message]

    cache = FileCache(tmp_path / "cache.json")
    one, two = Handed(first, name="first"), Handed({"x": 1}, name="second")
    async with load(one, two, mode="manual", cache=cache) as config:  # a refresh
        before = config.snapshot.to_dict()
        two.set(second)
        result = await config.refresh(force=True)
        assert str(result.error) == message
        assert config.snapshot.to_dict() == before and config.version == 1
        assert config["x"] == 1 and config.statistics().engine_errors == 0

    one, two = Handed(first, name="first"), Handed(second, name="second")
    async with load(one, two, mode="manual", cache=cache) as config:  # the cache round trip
        assert config.snapshot.from_cache and config.snapshot.to_dict() == before
        two.set({"x": 2})  # the collision goes: the sources are served again
        assert (await config.refresh(force=True)).error is None
        assert not config.snapshot.from_cache and config["x"] == 2


async def test_one_spelling_reads_the_same_on_every_path(tmp_path: Path) -> None:
    """A dotted key that no other key spells differently: ``config["a.b.c"]`` is the same on
    a fresh load, after a refresh and from the cache; a later source giving the same spelling
    overrides it as any key is overridden."""
    cache = FileCache(tmp_path / "cache.json")
    base = Handed({"a.b": {"c": 1, "d": 1}, "a": {"e": 1}}, name="base")
    over = Handed({"x": 1}, name="over")
    async with load(base, over, mode="manual", cache=cache) as config:
        assert config["a.b.c"] == 1 and config["a.e"] == 1
        over.set({"a.b": {"c": 2}})
        assert (await config.refresh(force=True)).error is None
        assert config["a.b.c"] == 2 and config["a.b.d"] == 1 and config["a.b"] == {"c": 2, "d": 1}
        served = config.snapshot.to_dict()
        assert served == {"a.b": {"c": 2, "d": 1}, "a": {"e": 1}}
    broken = Handed(nested(600), name="base")
    async with load(broken, over, mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache
        assert config["a.b.c"] == 2 and config.snapshot.to_dict() == served


async def test_history_finds_a_key_holding_a_dot() -> None:
    base = Static({"app.name": "shop"}, name="base")
    over = Static({"app.name": "web"}, name="over")
    async with load(base, over, mode="manual") as config:
        assert [(e.source, e.value) for e in config.history("app.name")] == [
            ("over", "web"),
            ("base", "shop"),
        ]
        assert "over" in config.explain("app.name") and "base" in config.explain("app.name")


# ---------------------------------------------------------------- case-insensitive keys


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"Port": 1, "PORT": 2}, "the key 'Port' is spelled two ways: 'Port' and 'PORT'"),
        ({"A.b": 1, "a": {"B": 2}}, "the key 'A.b' is spelled two ways: 'A.b' and 'a' > 'B'"),
        (
            {"DB": {"Host": "x"}, "db": {"host": "y"}},
            "the key 'DB.Host' is spelled two ways: 'DB' > 'Host' and 'db' > 'host'",
        ),
    ],
)
async def test_keys_that_differ_only_in_case_are_named_as_given(
    data: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(Handed(data), case_sensitive=False)
    assert str(info.value.errors[0]) == f"handed: {problem}; rename one"
    async with load(Handed(data), mode="manual") as config:  # case-sensitive: distinct keys
        assert len(list(config.snapshot.keys_flat())) >= 2


async def test_sections_that_differ_only_in_case_merge() -> None:
    data = {"DB": {"Host": "x"}, "db": {"port": 1}}
    async with load(Handed(data), case_sensitive=False, mode="manual") as config:
        assert config.snapshot.to_dict() == {"db": {"host": "x", "port": 1}}


async def test_a_case_folded_clash_across_sources_names_the_keys_as_given() -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(
            Handed({"App.Name": "a"}, name="first"),
            Handed({"APP": {"NAME": "b"}}, name="second"),
            case_sensitive=False,
        )
    assert str(info.value.errors[0]) == (
        "second: the key 'APP.NAME' is spelled two ways: 'APP' > 'NAME' in second and "
        "'App.Name' in first; rename one"
    )


# ---------------------------------------------------------------- Azure JSON values


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 600, 5000])
async def test_an_azure_json_value_nested_too_deep_is_a_parse_error(levels: int) -> None:
    from azure_server import Store, azure_server

    from aioconfig.sources import AzureAppConfig

    store = Store()
    ok = MAX_DEPTH - 1  # under the top-level mapping: 100 levels in all
    store.set("app:ok", "[" * ok + "]" * ok, content_type="application/json")
    async with azure_server(store) as server:
        source = AzureAppConfig(
            connection_string=store.connection_string(server), refresh_enabled=True
        )
        async with load(source, mode="manual") as config:
            deep = "[" * levels + "]" * levels
            store.set("app:deep", deep, content_type="application/json")
            result = await config.refresh(force=True)
            assert isinstance(result.error, ParseError)
            assert str(result.error) == (f"{source.name}: the JSON value at 'app:deep': {TOO_DEEP}")
            assert "app:deep" not in config and config.statistics().engine_errors == 0
            assert config["app:ok"] == nested(ok - 1, leaf=(), kind="tuple")
        with pytest.raises(InitialLoadError) as info:
            await load(AzureAppConfig(connection_string=store.connection_string(server)))
        (error,) = info.value.errors
        assert isinstance(error, ParseError) and not error.transient
