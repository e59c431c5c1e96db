"""The persistent last-known-good cache."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from aioconfig import FileCache, InitialLoadError, ParseError, SourceUnavailable, load
from aioconfig._cache import cache_key, decode, encode
from aioconfig._secrets import DEFAULT_SECRET_MATCHER as is_secret
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio

GOOD: dict[str, Any] = {
    "db": {"host": "db.internal", "port": 5432, "password": "hunter2"},
    "api_key": "k-123",
}


async def fill(path: Path, *, store_secrets: bool = False) -> None:
    """Run a Config once with a healthy source, so the cache holds GOOD."""
    source = MutableSource(GOOD, name="store")
    async with load(source, mode="manual", cache=FileCache(path, store_secrets=store_secrets)):
        pass


def down() -> MutableSource:
    source = MutableSource(GOOD, name="store")
    source.fail(SourceUnavailable("store", "connection refused"))
    return source


def test_secret_names() -> None:
    assert is_secret("db.password") and is_secret("DB_PASSWORD") and is_secret("api_key")
    assert is_secret("auth.token") and is_secret("client_secret") and is_secret("apikey")
    assert not is_secret("db.host") and not is_secret("keyboard.layout")


async def test_each_good_snapshot_is_written_atomically_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    source = MutableSource(GOOD, name="store")
    async with load(source, mode="manual", cache=FileCache(path)) as config:
        first = orjson.loads(path.read_bytes())
        assert first["version"] == 1 and first["data"] == {
            "db": {"host": "db.internal", "port": 5432}
        }
        assert first["omitted"] == ["db.password", "api_key"]
        source.set({**GOOD, "db": {**GOOD["db"], "port": 6543}})
        await config.refresh(force=True)
        second = orjson.loads(path.read_bytes())
        assert second["version"] == 2 and second["data"]["db"]["port"] == 6543
    assert b"hunter2" not in path.read_bytes() and b"k-123" not in path.read_bytes()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["cache.json"]  # no temporary file left behind


async def test_secrets_are_kept_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    await fill(path, store_secrets=True)
    assert orjson.loads(path.read_bytes())["data"] == GOOD


async def test_an_unreachable_store_starts_from_the_cache_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    await fill(path)
    source = down()
    with caplog.at_level(logging.WARNING, logger="aioconfig"):
        async with load(source, mode="manual", max_init_wait=0.05, cache=FileCache(path)) as config:
            snapshot = config.snapshot
            assert snapshot.from_cache and "from_cache=True" in repr(snapshot)
            assert config["db.host"] == "db.internal" and "db.password" not in config
            assert "connection refused" in str(config.statistics().last_error)
            source.fail(None)
            result = await config.refresh(force=True)
            assert result.changed and result.keys == {"db.password", "api_key"}
            assert not config.snapshot.from_cache and config.version == 2
            assert config["db.password"] == "hunter2"
    assert any("starting from the cached configuration" in r.getMessage() for r in caplog.records)
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


async def test_identical_live_data_still_replaces_the_cached_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    await fill(path, store_secrets=True)
    source = down()
    async with load(source, mode="manual", max_init_wait=0.05, cache=FileCache(path)) as config:
        source.fail(None)
        result = await config.refresh(force=True)
        assert result.changed and result.keys == frozenset()
        assert not config.snapshot.from_cache


async def test_auto_mode_retries_in_the_background_then_watches(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    await fill(path)
    clock = FakeClock()
    source = MutableSource(GOOD, name="store", push=True)
    source.fail(SourceUnavailable("store", "connection refused"))
    async with load(
        source, clock=clock, max_init_wait=0.05, cache=FileCache(path), refresh_interval=30, seed=1
    ) as config:
        assert config.snapshot.from_cache
        await clock.advance(5)  # a few backoff retries, still failing
        assert config.snapshot.from_cache
        source.fail(None)
        await clock.advance(30)  # the next retry succeeds: the sources are back
        assert not config.snapshot.from_cache
        async with config.changes() as events:
            source.set({**GOOD, "db": {**GOOD["db"], "port": 1}})  # pushed, no polling needed
            with anyio.fail_after(5):
                event = await events.__anext__()
        assert event.keys == {"db.port"}


async def test_a_malformed_source_at_start_also_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    await fill(path)
    source = MutableSource(GOOD, name="store")
    source.fail(ParseError("store", "unexpected character", line=1, column=2))
    async with load(source, mode="manual", cache=FileCache(path)) as config:
        assert config.snapshot.from_cache


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        (b'{"format": "aioconfig-cache", "format_version": 1, "key": "', "corrupt or truncated"),
        (b"\x00\xff garbage", "corrupt or truncated"),
        (b'{"some": "other program"}', "not an aioconfig cache entry"),
        (
            encode({"a": 1}, key="aioconfig:other", version=1, sources=["x"], store_secrets=False),
            "it was written for other sources",
        ),
        (
            b'{"format": "aioconfig-cache", "format_version": 99, "key": "k"}',
            "entry format 99, expected 2",
        ),
    ],
)
async def test_an_unusable_cache_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, warning: str
) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="aioconfig"), pytest.raises(InitialLoadError):
        await load(down(), max_init_wait=0.05, cache=FileCache(path))
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"ignoring the cache FileCache({str(path)!r}, store_secrets=False): {warning}" in messages
    )


async def test_no_cache_file_means_the_usual_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(InitialLoadError, match="store: connection refused"):
        await load(down(), max_init_wait=0.05, cache=FileCache(tmp_path / "none.json"))


async def test_a_failing_cache_write_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "dir").mkdir()
    with caplog.at_level(logging.WARNING, logger="aioconfig"):
        async with load(MutableSource(GOOD), mode="manual", cache=FileCache(tmp_path / "dir")) as c:
            assert c["db.port"] == 5432
    assert any("writing the cache" in r.getMessage() for r in caplog.records)


def test_a_cache_must_have_get_and_set() -> None:
    with pytest.raises(TypeError, match="cache must have async get"):
        load(MutableSource({}), cache="cache.json")  # type: ignore[arg-type]


def test_the_key_depends_on_the_sources_in_order() -> None:
    assert cache_key(["a", "b"]) == cache_key(["a", "b"]) != cache_key(["b", "a"])
    assert decode(b"{}", key="k", where="x") is None


@pytest.mark.slow
def test_a_crash_mid_write_never_leaves_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    writer = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from aioconfig._cache import FileCache, encode
        cache = FileCache({str(path)!r})
        data = {{"k%d" % i: "v" * 200 for i in range(5000)}}
        n = 0
        while True:
            n += 1
            data["n"] = n
            cache._write(encode(dict(data), key="k", version=n, sources=["s"], store_secrets=False))
            if n == 1:
                print("ready", flush=True)
        """
    )
    for _ in range(5):
        with subprocess.Popen(
            [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True
        ) as process:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
            anyio.run(anyio.sleep, 0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stdout.close()
        entry = decode(path.read_bytes(), key="k", where="test")
        assert entry is not None and entry.data["n"] == entry.version
