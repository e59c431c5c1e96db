from __future__ import annotations

import os
import sys
import time
from collections.abc import Hashable
from pathlib import Path

import anyio
import pytest

from aioconfig._exceptions import ParseError, SourceError, SourceUnavailable
from aioconfig.sources import File, NotModified, Payload

pytestmark = pytest.mark.anyio

SECRET = "hunter2-s3cr3t"
AN_HOUR_NS = 3600 * 1_000_000_000


def age(path: Path) -> None:
    """Date the file an hour back, so its token is not racy."""
    past = time.time_ns() - AN_HOUR_NS
    os.utime(path, ns=(past, past))


def rewrite_keeping_stat(path: Path, text: str) -> None:
    """Rewrite in place, same size, and put the old mtime back: the stat signature is unchanged."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with open(path, "r+b") as file:
        file.write(text.encode())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns,
        before.st_size,
        before.st_ino,
    )


async def load_payload(source: File, token: Hashable | None = None) -> Payload:
    result = await source.load(token)
    assert isinstance(result, Payload)
    return result


# --- construction


def test_name_is_the_path_as_given(tmp_path: Path) -> None:
    assert File("conf/app.toml").name == "conf/app.toml"
    assert File(tmp_path / "app.json").name == str(tmp_path / "app.json")
    assert File("app.yml").format == "yaml"
    assert File("conf", format="ini").format == "ini"
    assert repr(File("app.toml")) == "File('app.toml', format='toml')"


def test_unknown_suffix() -> None:
    with pytest.raises(ValueError) as caught:
        File("conf/app.conf")
    assert str(caught.value) == (
        "cannot tell the format of 'conf/app.conf' from its suffix; "
        "pass format= one of: env, ini, json, toml, yaml"
    )


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'; expected one of: env, ini"):
        File("app.json", format="xml")  # type: ignore[arg-type]


def test_options() -> None:
    assert File("a.json").optional is False
    assert File("a.json", optional=True).optional is True
    assert File("a.json", watch=True).can_watch is True
    assert File("a.json", watch=False).can_watch is False
    assert File("a.json").can_watch is True  # watchfiles is installed here


# --- loading


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("app.json", '{"db": {"port": "5432"}}'),
        ("app.toml", '[db]\nport = "5432"\n'),
        ("app.yaml", "db:\n  port: '5432'\n"),
        ("app.ini", "[db]\nport = 5432\n"),
        ("app.env", "db=x\n"),
    ],
)
async def test_load_formats(tmp_path: Path, filename: str, text: str) -> None:
    path = tmp_path / filename
    path.write_text(text)
    payload = await load_payload(File(path))
    expected = {"db": "x"} if filename.endswith(".env") else {"db": {"port": "5432"}}
    assert payload.data == expected


async def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(SourceUnavailable) as caught:
        await File(path, optional=True).load(None)
    assert str(caught.value) == f"{path}: file not found"
    assert caught.value.source == str(path)
    assert caught.value.transient is False


async def test_missing_parent(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SourceUnavailable, match="file not found"):
        await File(tmp_path / "file" / "app.json").load(None)


async def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.mkdir()
    with pytest.raises(SourceError) as caught:
        await File(path).load(None)
    assert str(caught.value) == f"{path}: is a directory"
    assert not isinstance(caught.value, SourceUnavailable)
    assert caught.value.transient is False


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX, not root")
async def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(SourceError) as caught:
        await File(path).load(None)
    assert str(caught.value) == f"{path}: permission denied"
    assert caught.value.transient is False


@pytest.mark.parametrize(
    ("filename", "text", "where"),
    [
        ("app.json", f'{{"password": "{SECRET}",\n "b": }}', "2:7: unexpected character"),
        ("app.toml", f'password = "{SECRET}"\nport = = 2\n', "2:8: Invalid value"),
        (
            "app.yaml",
            f"password: {SECRET}\n  port: 1\n",
            "2:7: mapping values are not allowed here",
        ),
        ("app.ini", f"[db]\n{SECRET}\n", "2: expected 'key = value' or a [section] header"),
        ("app.env", f"PASSWORD='{SECRET}\n", "1:10: unterminated single-quoted value"),
        ("app.json", f'["{SECRET}"]', " top level must be a mapping, got list"),
    ],
)
async def test_parse_errors_name_the_place_not_the_content(
    tmp_path: Path, filename: str, text: str, where: str
) -> None:
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(ParseError) as caught:
        await File(path).load(None)
    if filename.endswith(".json") and "top level" not in where:
        # orjson's wording grows between versions; the place and the start of it do not.
        assert str(caught.value).startswith(f"{path}:{where}")
    else:
        assert str(caught.value) == f"{path}:{where}"
    assert SECRET not in str(caught.value)
    assert caught.value.source == str(path)
    assert caught.value.transient is False


async def test_yaml_needs_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    with pytest.raises(SourceError) as caught:
        await File(path).load(None)
    assert str(caught.value) == f"{path}: install aioconfig[yaml] to read YAML files"


# --- change detection


async def test_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    age(path)
    source = File(path)
    first = await load_payload(source)
    assert await source.load(first.token) == NotModified(first.token, order=2)
    # The stat signature alone decides for a settled (non-racy) file: a rewrite that keeps it
    # goes unseen, which proves the file was not read.
    rewrite_keeping_stat(path, '{"v": 2}')
    assert await source.load(first.token) == NotModified(first.token, order=3)


async def test_touched_but_same_content_is_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    age(path)
    source = File(path)
    first = await load_payload(source)
    os.utime(path)  # a new mtime, the same bytes
    result = await source.load(first.token)
    assert isinstance(result, NotModified)
    assert result.token != first.token
    assert isinstance(await source.load(result.token), NotModified)


async def test_changed_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)
    path.write_text('{"v": 22}')
    second = await load_payload(source, first.token)
    assert second.data == {"v": 22}
    assert second.token != first.token


async def test_racy_token_forces_a_read(tmp_path: Path) -> None:
    """A same-size rewrite within the timestamp granularity leaves the stat unchanged."""
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)  # just written: racy
    rewrite_keeping_stat(path, '{"v": 2}')
    second = await load_payload(source, first.token)
    assert second.data == {"v": 2}


async def test_foreign_token_means_load(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    assert (await load_payload(File(path), "something else")).data == {"v": 1}


async def test_each_payload_is_fresh(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": {"w": 1}}')
    source = File(path)
    first = await load_payload(source)
    second = await load_payload(source)
    assert first.data == second.data
    assert first.data is not second.data


# --- watching


async def write_atomically(path: Path, text: str) -> None:
    """Like an editor: write a new file and rename it over the old one."""
    temporary = path.with_name(path.name + ".tmp")
    await anyio.Path(temporary).write_text(text)
    os.replace(temporary, path)


@pytest.mark.slow
async def test_watch_emits_changes(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)
    send, receive = anyio.create_memory_object_stream[Payload | SourceError](10)
    with send, receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, first.token, send.send)
            with anyio.fail_after(5):
                await anyio.Path(path).write_text('{"v": 2}')
                assert data_of(await receive.receive()) == {"v": 2}
                # By now the watcher is surely set up: these come from file events.
                await write_atomically(path, '{"v": 3}')
                assert data_of(await receive.receive()) == {"v": 3}
                (tmp_path / "other.json").write_text("{}")
                os.utime(path)  # no new content: no payload
                await anyio.Path(path).write_text('{"v": 4}')
                assert data_of(await receive.receive()) == {"v": 4}
            cancelled_at = anyio.current_time()
            tg.cancel_scope.cancel()
        assert anyio.current_time() - cancelled_at < 1
        assert receive.statistics().current_buffer_used == 0


@pytest.mark.slow
async def test_watch_catches_a_change_made_before_it_started(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)
    path.write_text('{"v": 2}')
    send, receive = anyio.create_memory_object_stream[Payload | SourceError](10)
    with send, receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, first.token, send.send)
            with anyio.fail_after(5):
                assert data_of(await receive.receive()) == {"v": 2}
            tg.cancel_scope.cancel()


@pytest.mark.slow
def data_of(item: Payload | SourceError) -> object:
    assert isinstance(item, Payload), item
    return item.data


async def test_watch_reports_a_malformed_edit_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)
    path.write_text(f'{{"v": "{SECRET}"')
    send, receive = anyio.create_memory_object_stream[Payload | SourceError](10)
    with send, receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, first.token, send.send)
            with anyio.fail_after(5):
                error = await receive.receive()
            assert isinstance(error, ParseError)
            assert str(error).startswith(f"{path}:1:23: unexpected end of data")
            assert SECRET not in str(error)
            await write_atomically(path, '{"v": 2}')
            with anyio.fail_after(5):
                fixed = await receive.receive()
            assert isinstance(fixed, Payload) and fixed.data == {"v": 2}
            tg.cancel_scope.cancel()


@pytest.mark.slow
async def test_watch_waits_for_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    source = File(path, optional=True)
    send, receive = anyio.create_memory_object_stream[Payload | SourceError](10)
    with send, receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, None, send.send)
            await anyio.sleep(0.2)  # let the first check find nothing
            await write_atomically(path, '{"v": 1}')
            with anyio.fail_after(5):
                assert data_of(await receive.receive()) == {"v": 1}
            tg.cancel_scope.cancel()


@pytest.mark.slow
async def test_watch_raises_when_a_seen_file_disappears(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"v": 1}')
    source = File(path)
    first = await load_payload(source)
    path.unlink()

    async def emit(payload: Payload | SourceError) -> None:
        raise AssertionError("nothing to emit")

    with anyio.fail_after(5), pytest.raises(SourceUnavailable, match="file not found"):
        await source.watch(first.token, emit)


@pytest.mark.slow
async def test_watch_missing_directory(tmp_path: Path) -> None:
    source = File(tmp_path / "nowhere" / "app.json")

    async def emit(payload: Payload | SourceError) -> None:
        raise AssertionError("nothing to emit")

    with anyio.fail_after(5), pytest.raises(SourceUnavailable, match="cannot watch"):
        await source.watch(None, emit)


@pytest.mark.slow
async def test_an_optional_watched_file_may_come_and_go(tmp_path: Path) -> None:
    from aioconfig import load
    from aioconfig.sources import Static

    path = tmp_path / "local.json"
    errors: list[Exception] = []
    async with load(
        Static({"a": 0}),
        File(path, optional=True, watch=True),
        on_refresh_error=errors.append,
    ) as config:
        async with config.changes() as events:
            assert config["a"] == 0
            path.write_text('{"a": 1}')
            with anyio.fail_after(5):
                await events.__anext__()
            assert config["a"] == 1
            path.unlink()
            with anyio.fail_after(5):
                await events.__anext__()
            assert config["a"] == 0
            path.write_text('{"a": 2}')
            with anyio.fail_after(5):
                await events.__anext__()
            assert config["a"] == 2
    assert errors == []


@pytest.mark.slow
async def test_a_bad_edit_to_a_watched_file_is_reported_once(tmp_path: Path) -> None:
    from aioconfig import ChangeEvent, load

    path = tmp_path / "app.toml"
    path.write_text("a = 1\n")
    async with load(File(path, watch=True), refresh_interval=0.2) as config:
        async with config.changes() as events:
            path.write_text("a = \n")
            with anyio.fail_after(5):
                first = await events.__anext__()
            assert isinstance(first.error, ParseError)
            assert str(first.error) == f"{path}:1:5: Invalid value"
            await anyio.sleep(1.0)  # five poll intervals: nothing may report it again
            assert events.pending() == 0
            assert config["a"] == 1
            path.write_text("a = 2\n")
            with anyio.fail_after(5):
                fixed: ChangeEvent = await events.__anext__()
            assert fixed.keys == {"a"} and config["a"] == 2
        assert config.statistics().errors == 1


async def test_a_missing_relative_path_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceUnavailable) as caught:
        await File("settings.toml").load(None)
    looked = tmp_path / "settings.toml"
    assert str(caught.value) == f"settings.toml: file not found (looked for {looked})"
