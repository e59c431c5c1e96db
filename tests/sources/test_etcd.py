"""Etcd against real etcd processes: load, watch, compaction, auth, failover, outages."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from functools import partial
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from etcd_server import EtcdClient, EtcdCluster, require_etcd
from http_helpers import wait_until

from aioconfig import (
    ChangeEvent,
    ChangeStream,
    InitialLoadError,
    ParseError,
    Snapshot,
    SourceError,
    SourceUnavailable,
    load,
)
from aioconfig.sources import NotModified, Payload
from aioconfig.sources._etcd import Etcd, EtcdToken

pytestmark = pytest.mark.anyio

SECRET = "hunter2-s3cr3t"
# The test servers send progress notifications every second (EtcdCluster's default).
NOTIFY = 1.0


# ---------------------------------------------------------------------------------- helpers


def expected(prefix: str, kvs: dict[str, bytes]) -> dict[str, Any]:
    """What the configuration must be for these keys (json-or-string), built independently."""
    data: dict[str, Any] = {}
    for key, raw in sorted(kvs.items()):
        *sections, leaf = key[len(prefix) :].split("/")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        try:
            node[leaf] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            node[leaf] = raw.decode()
    return data


async def store_state(writer: EtcdClient, prefix: str) -> dict[str, Any]:
    _, kvs = await writer.get_prefix(prefix)
    return expected(prefix, kvs)


async def next_change(events: ChangeStream, seconds: float = 5.0) -> ChangeEvent:
    """The next event that is not an error (errors are checked where a test expects them)."""
    with anyio.fail_after(seconds):
        async for event in events:
            if event.error is None:
                return event
    raise AssertionError("the change stream ended")


async def next_event(events: ChangeStream, seconds: float = 5.0) -> ChangeEvent:
    with anyio.fail_after(seconds):
        return await anext(events)


class Recorder:
    """An ``emit`` for driving ``Etcd.watch`` directly: keeps what it is given, in order."""

    def __init__(self) -> None:
        self.items: list[Payload | SourceError] = []
        self._changed = anyio.Event()

    async def __call__(self, item: Payload | SourceError) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, count: int, seconds: float = 5.0) -> None:
        with anyio.fail_after(seconds):
            while len(self.items) < count:
                await self._changed.wait()

    @property
    def payloads(self) -> list[Payload]:
        return [item for item in self.items if isinstance(item, Payload)]


# ---------------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ("", "must be a URL"),
        ([], "at least one"),
        ("127.0.0.1:2379", "must be a URL"),
        ("ftp://127.0.0.1:2379", "must be a URL"),
        ("http://", "must be a URL"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://127.0.0.1:2379/v3", "must not have a path"),
        ("http://127.0.0.1:2379?x=1", "must not have a path"),
        (["http://a:2379", "http://a:2379/"], "listed twice"),
        ("http://a:2379,,http://b:2379", "must be a URL"),
    ],
)
def test_malformed_endpoints_are_refused(endpoints: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Etcd(endpoints)


def test_credentials_in_an_endpoint_are_refused_without_repeating_them() -> None:
    with pytest.raises(ValueError, match="username= and password=") as caught:
        Etcd(f"http://app:{SECRET}@127.0.0.1:2379")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("endpoints", [123, b"http://a:2379", ["http://a:2379", 7]])
def test_endpoints_of_the_wrong_type_are_refused(endpoints: Any) -> None:
    with pytest.raises(TypeError):
        Etcd(endpoints)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "/myapp"}, "must end with the separator"),
        ({"prefix": "config.", "separator": "/"}, "must end with the separator"),
        ({"separator": ""}, "separator"),
        ({"value_format": "yaml"}, "unknown value_format"),
        ({"username": "app"}, "both username= and password="),
        ({"password": SECRET}, "both username= and password="),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"progress_notify_interval": 10, "read_idle_timeout": 10}, "longer than"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Etcd("http://127.0.0.1:2379", **options)
    assert SECRET not in str(caught.value)


def test_name_and_repr_never_show_credentials() -> None:
    source = Etcd(
        "http://10.0.0.1:2379, http://10.0.0.2:2379/",
        prefix="/myapp/",
        username="app",
        password=SECRET,
    )
    assert source.name == "etcd://10.0.0.1:2379/myapp/"
    assert source.endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2379")
    assert SECRET not in repr(source)
    assert source.can_watch
    assert Etcd(prefix="").name == "etcd://127.0.0.1:2379"
    assert Etcd("https://[::1]:2379", prefix="app.", separator=".").name == "etcd://[::1]:2379app."


# ---------------------------------------------------------------------------------- load


async def test_initial_load_nests_keys_and_parses_values(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.txn(
        {
            f"{prefix}db/port": "5432",
            f"{prefix}db/host": "db.local",
            f"{prefix}db/replicas": '["a", "b"]',
            f"{prefix}features/beta": "true",
            f"{prefix}quoted": '"1"',
            f"{prefix}empty": "",
            f"{prefix}ratio": "0.5",
        }
    )
    await writer.put(prefix.rstrip("/") + "-other/x", "not mine")  # a neighbour, not under it
    async with load(Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)) as config:
        assert config.snapshot.to_dict() == {
            "db": {"port": 5432, "host": "db.local", "replicas": ["a", "b"]},
            "features": {"beta": True},
            "quoted": "1",
            "empty": "",
            "ratio": 0.5,
        }
        assert config["db.port"] == 5432
        assert config.snapshot.sources == (f"etcd://{etcd.endpoints[0][7:]}{prefix}",)


@pytest.mark.parametrize(
    ("value_format", "value"),
    [("json-or-string", {"a": 1}), ("json", {"a": 1}), ("string", '{"a": 1}')],
)
async def test_value_formats(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str, value_format: Any, value: Any
) -> None:
    await writer.put(f"{prefix}obj", '{"a": 1}')
    await writer.put(f"{prefix}port", "5432")
    source = Etcd(etcd.endpoints, prefix=prefix, value_format=value_format)
    try:
        loaded = await source.load(None)
    finally:
        await source.aclose()
    assert isinstance(loaded, Payload)
    assert loaded.data["obj"] == value
    assert loaded.data["port"] == ("5432" if value_format == "string" else 5432)


async def test_values_past_64_bits_read_exactly(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    big = 2**70 + 1  # orjson alone reads it as a float
    await writer.put(f"{prefix}limit", str(big))
    await writer.put(f"{prefix}limits", f'{{"max": {big}}}')
    source = Etcd(etcd.endpoints, prefix=prefix)
    try:
        loaded = await source.load(None)
    finally:
        await source.aclose()
    assert isinstance(loaded, Payload)
    assert loaded.data["limit"] == big and type(loaded.data["limit"]) is int
    assert loaded.data["limits"] == {"max": big}


async def test_json_format_names_the_key_and_revision_of_a_bad_value(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    revision = await writer.put(f"{prefix}db/password", SECRET)
    with pytest.raises(InitialLoadError) as caught:
        async with load(Etcd(etcd.endpoints, prefix=prefix, value_format="json")):
            pass
    error = caught.value.errors[0]
    assert isinstance(error, ParseError)
    assert f"'{prefix}db/password'" in str(error)
    assert f"revision {revision}" in str(error)
    assert "not JSON" in str(error)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("value_format", ["json-or-string", "string"])
async def test_a_value_that_is_not_utf8_is_a_parse_error(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str, value_format: Any
) -> None:
    await writer.put(f"{prefix}blob", b"\xff\xfe\x00")
    async with aclosing(Etcd(etcd.endpoints, prefix=prefix, value_format=value_format)) as source:
        with pytest.raises(ParseError, match=f"key '{prefix}blob' .*not UTF-8"):
            await source.load(None)


async def test_an_empty_key_segment_is_a_parse_error(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}db//port", "1")
    async with aclosing(Etcd(etcd.endpoints, prefix=prefix)) as source:
        with pytest.raises(ParseError, match=f"key '{prefix}db//port' has an empty segment"):
            await source.load(None)


async def test_a_key_that_is_both_value_and_section_is_a_parse_error(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}db", SECRET)
    await writer.put(f"{prefix}db/port", "5432")
    async with aclosing(Etcd(etcd.endpoints, prefix=prefix)) as source:
        with pytest.raises(ParseError) as caught:
            await source.load(None)
    message = str(caught.value)
    assert f"'{prefix}db'" in message and f"'{prefix}db/port'" in message
    assert "conflict" in message and SECRET not in message and "5432" not in message


async def test_not_modified_until_the_prefix_changes(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}a", "1")
    async with aclosing(Etcd(etcd.endpoints, prefix=prefix)) as source:
        first = await source.load(None)
        assert isinstance(first, Payload)
        token = first.token
        assert isinstance(token, EtcdToken) and hash(token) is not None
        assert isinstance(await source.load(token), NotModified)

        # A write elsewhere moves the store revision, not the prefix.
        outside = await writer.put(prefix.rstrip("/") + "-other/a", "2")
        unchanged = await source.load(token)
        assert isinstance(unchanged, NotModified)
        assert isinstance(unchanged.token, EtcdToken)
        assert unchanged.token.revision == outside

        # Deleting one key and adding another keeps the count: the newest mod_revision moves.
        await writer.txn({f"{prefix}b": "2"}, deletes=[f"{prefix}a"])
        changed = await source.load(unchanged.token)
        assert isinstance(changed, Payload) and changed.data == {"b": 2}
        await writer.delete(f"{prefix}b")
        emptied = await source.load(changed.token)
        assert isinstance(emptied, Payload) and emptied.data == {}


@pytest.mark.slow
async def test_an_empty_prefix_reads_the_whole_keyspace(
    make_etcd: Callable[..., EtcdCluster],
) -> None:
    async with make_etcd() as etcd, EtcdClient(etcd.endpoints) as writer:
        await writer.put("app/db/port", "5432")
        await writer.put("zz", "\u00e9t\u00e9")
        source = Etcd(etcd.endpoints, prefix="", progress_notify_interval=NOTIFY)
        async with load(source) as config, config.changes() as events:
            assert config.snapshot.to_dict() == {
                "app": {"db": {"port": 5432}},
                "zz": "\u00e9t\u00e9",
            }
            await writer.put("\x01first", "1")  # the watch covers the whole keyspace too
            assert (await next_change(events)).keys == {"\x01first"}


# ---------------------------------------------------------------------------------- watch


async def test_each_revision_is_one_change_event(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}db/port", "5432")
    async with (
        load(Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)) as config,
        config.changes() as events,
    ):
        version = config.version

        await writer.put(f"{prefix}db/port", "6543")
        event = await next_change(events)
        assert event.keys == {"db.port"} and config["db.port"] == 6543
        assert event.new.version == version + 1

        # One transaction, three keys: one swap.
        await writer.txn({f"{prefix}a": "1", f"{prefix}b/c": "2", f"{prefix}d": "x"})
        event = await next_change(events)
        assert event.keys == {"a", "b.c", "d"}
        assert event.new.version == version + 2

        await writer.txn(deletes=[f"{prefix}a", f"{prefix}d"])
        event = await next_change(events)
        assert event.keys == {"a", "d"} and "a" not in config

        await writer.delete(f"{prefix}db/port")
        event = await next_change(events)
        assert event.keys == {"db.port"} and "db" not in config
        assert event.new.version == version + 4
        assert events.pending() == 0
        assert config.snapshot.to_dict() == await store_state(writer, prefix)


async def test_a_poll_and_the_watch_that_race_end_on_the_newest_revision(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    """A forced refresh reads the store at a revision newer than any the watch has pushed
    (writes elsewhere move it on) while the watch's push of x=1 is still being applied, and
    the watch's x=2 is queued behind: the engine ends on x=2, whichever answer comes first."""
    await writer.put(f"{prefix}x", "0")
    hold: anyio.Event | None = None
    held = anyio.Event()

    async def validate(candidate: Snapshot) -> None:
        if hold is not None and candidate.get("x") == 1:
            held.set()
            await hold.wait()

    range_read = anyio.Event()

    async def on_request_end(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.url.path.endswith("/kv/range"):
            range_read.set()

    tracing = aiohttp.TraceConfig()
    tracing.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[tracing]) as session:
        source = Etcd(etcd.endpoints, prefix=prefix, session=session)
        async with load(source, validate=validate, refresh_interval=60) as config:
            hold = anyio.Event()
            await writer.put(f"{prefix}x", "1")  # pushed; its apply waits in validate
            with anyio.fail_after(5):
                await held.wait()
            await writer.put(f"{prefix}x", "2")  # pushed, queued behind it
            for n in range(5):
                await writer.put(f"{prefix[:-1]}-elsewhere/{n}", "1")  # the revision moves on
            range_read = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(config.refresh, force=True))  # reads x=2, newer revision
                with anyio.fail_after(5):
                    await range_read.wait()
                await anyio.sleep(0.05)
                hold.set()
            await wait_until(lambda: config["x"] == 2)
            await writer.put(f"{prefix}x", "9")  # and the watch goes on from there
            await wait_until(lambda: config["x"] == 9)


async def test_a_bad_value_is_reported_and_the_watch_goes_on(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}limits", '{"rps": 10}')
    source = Etcd(
        etcd.endpoints, prefix=prefix, value_format="json", progress_notify_interval=NOTIFY
    )
    async with load(source) as config, config.changes() as events:
        revision = await writer.txn({f"{prefix}limits": SECRET, f"{prefix}other": "1"})
        error_event = await next_event(events)
        assert isinstance(error_event.error, ParseError)
        assert f"'{prefix}limits' at revision {revision}" in str(error_event.error)
        assert SECRET not in str(error_event.error)
        change = await next_change(events)
        assert change.keys == {"other"}  # the rest of that revision is applied
        assert config["limits.rps"] == 10  # the bad key keeps its last good value

        await writer.put(f"{prefix}limits", '{"rps": 20}')
        change = await next_change(events)
        assert change.keys == {"limits.rps"} and config["limits.rps"] == 20


async def test_conflicting_keys_in_a_watch_are_reported_until_resolved(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}db", "1")
    async with (
        load(Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)) as config,
        config.changes() as events,
    ):
        await writer.put(f"{prefix}db/port", "5432")
        event = await next_event(events)
        assert isinstance(event.error, ParseError) and "conflict" in str(event.error)
        assert config["db"] == 1
        await writer.delete(f"{prefix}db")  # resolved: the watch's copy of the prefix is exact
        event = await next_change(events)
        assert config.snapshot.to_dict() == {"db": {"port": 5432}}


async def test_watch_recovers_from_compaction_with_one_version(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}a", "1")
    await writer.put(f"{prefix}b", "2")
    async with aclosing(
        Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)
    ) as source:
        first = await source.load(None)
        assert isinstance(first, Payload)
        # While nobody watches: several revisions, then their history is compacted away.
        await writer.put(f"{prefix}a", "10")
        await writer.delete(f"{prefix}b")
        await writer.txn({f"{prefix}c/d": "3", f"{prefix}e": "4"})
        compacted = await writer.compact()

        record = Recorder()
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, first.token, record)
            await record.wait_for(1)
            await anyio.sleep(0.1)  # nothing else comes
            assert len(record.items) == 1
            recovered = record.items[0]
            assert isinstance(recovered, Payload)
            assert recovered.data == {"a": 10, "c": {"d": 3}, "e": 4}
            assert isinstance(recovered.token, EtcdToken)
            assert recovered.token.revision >= compacted

            # And it watches on from there.
            revision = await writer.put(f"{prefix}e", "5")
            await record.wait_for(2)
            last = record.items[1]
            assert isinstance(last, Payload) and last.data["e"] == 5
            assert last.token == EtcdToken(revision, 3, revision)
            tg.cancel_scope.cancel()


async def test_watch_from_a_token_it_does_not_know_lists_first(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}a", "1")
    async with aclosing(
        Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)
    ) as source:
        record = Recorder()
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.watch, None, record)
            await record.wait_for(1)
            assert record.payloads[0].data == {"a": 1}
            await writer.put(f"{prefix}a", "2")
            await record.wait_for(2)
            assert record.payloads[1].data == {"a": 2}
            tg.cancel_scope.cancel()


async def test_a_revision_larger_than_a_line_limit(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}a", "0")
    big = {f"{prefix}blob{i}": "x" * 200_000 for i in range(3)}  # ~800 KB of base64, one line
    async with (
        load(Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY)) as config,
        config.changes() as events,
    ):
        await writer.txn(big)
        event = await next_change(events)
        assert event.keys == {"blob0", "blob1", "blob2"}
        assert config["blob2"] == "x" * 200_000


async def test_a_session_passed_in_is_used_and_left_open(
    etcd: EtcdCluster, writer: EtcdClient, prefix: str
) -> None:
    await writer.put(f"{prefix}a", "1")
    async with aiohttp.ClientSession() as session:
        source = Etcd(etcd.endpoints, prefix=prefix, session=session)
        async with load(source) as config:
            assert config["a"] == 1
        assert not session.closed
        loaded = await source.load(None)  # still usable
        assert isinstance(loaded, Payload)
        await source.aclose()
        assert not session.closed


async def test_unreachable_etcd_names_the_endpoint_or_counts_as_empty_when_optional() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(InitialLoadError) as caught:
        async with load(Etcd(endpoint, timeout=0.5), max_init_wait=0.2):
            pass
    (error,) = caught.value.errors
    assert isinstance(error, SourceUnavailable)
    assert f"etcd://{endpoint[7:]}/myapp/: {endpoint}: " in str(error)
    assert "Connect call failed" in str(error)

    async with load(Etcd(endpoint, timeout=0.5, optional=True), max_init_wait=0.2) as config:
        assert config.snapshot.to_dict() == {}


# ---------------------------------------------------------------------------------- auth


@pytest.mark.slow
async def test_auth(make_etcd: Callable[..., EtcdCluster]) -> None:
    prefix = "/secure/"
    # Simple tokens live one second after their last use (etcd's default is 300).
    async with make_etcd(auth_token_ttl=1) as etcd, EtcdClient(etcd.endpoints) as admin:
        await admin.put(f"{prefix}db/port", "5432")
        await admin.enable_auth(root_password="rootpw", user="app", password=SECRET, prefix=prefix)

        def source(**options: Any) -> Etcd:
            return Etcd(etcd.endpoints, prefix=prefix, progress_notify_interval=NOTIFY, **options)

        # No credentials: a clear, permanent error.
        with pytest.raises(InitialLoadError, match="give Etcd a username and a password"):
            async with load(source(), max_init_wait=2):
                pass

        # A wrong password: permanent too, and the password is nowhere in it.
        with pytest.raises(InitialLoadError) as caught:
            async with load(source(username="app", password="wrong-" + SECRET), max_init_wait=2):
                pass
        message = str(caught.value)
        assert "authentication as 'app' failed" in message
        assert "invalid user ID or password" in message
        assert SECRET not in message and "wrong-" not in message

        # A prefix the user may not read: permission denied.
        outside = Etcd(etcd.endpoints, prefix="/other/", username="app", password=SECRET)
        async with aclosing(outside):
            with pytest.raises(SourceError, match="permission denied"):
                await outside.load(None)

        good = source(username="app", password=SECRET)
        async with load(good) as config, config.changes() as events:
            assert config["db.port"] == 5432
            assert SECRET not in repr(good) and SECRET not in good.name

            # Tokens expire. The watch outlives its token (etcd checks it when a watch opens);
            # the next request is refused, and the source fetches a new token.
            await anyio.sleep(2.5)
            admin.token = await admin.authenticate("root", "rootpw")
            await admin.put(f"{prefix}db/port", "6543")
            await next_change(events)
            assert config["db.port"] == 6543
            assert isinstance(await good.load(None), Payload)

            # Turning auth off and on forgets every token, and a restarted member replays
            # that: the watch reopens with a token etcd refuses, and gets a new one.
            await admin.disable_auth()
            admin.token = None
            await admin.call("/v3/auth/enable", {})
            await etcd.members[0].astop()
            await etcd.members[0].astart()
            admin.token = await admin.authenticate("root", "rootpw")
            await admin.put(f"{prefix}db/port", "7654")
            await next_change(events, seconds=10)
            assert config["db.port"] == 7654

            # With auth off, etcd refuses any token: the source sends none, until auth is back.
            await admin.disable_auth()
            assert isinstance(await good.load(None), Payload)
            admin.token = None
            await admin.call("/v3/auth/enable", {})
            assert isinstance(await good.load(None), Payload)


# ---------------------------------------------------------------------------------- cluster


@pytest.mark.slow
async def test_killing_the_leader_while_writes_go_on(
    etcd_cluster: EtcdCluster, prefix: str
) -> None:
    leader = await etcd_cluster.aleader()
    others = [m.client_url for m in etcd_cluster.members if m is not leader]
    # The client talks to the leader first, so killing it cuts the watch.
    endpoints = [leader.client_url, *others]
    seen: list[int] = []
    async with (
        EtcdClient(endpoints, attempts=50) as writer,
        load(Etcd(endpoints, prefix=prefix, timeout=2, progress_notify_interval=NOTIFY)) as config,
        config.changes(max_buffer=1000) as events,
    ):

        async def write(count: int) -> None:
            for i in range(count):
                await writer.put(f"{prefix}counter", str(i))
                await writer.put(f"{prefix}keys/k{i % 7}", str(i))

        await writer.put(f"{prefix}counter", "-1")
        await next_change(events)
        async with anyio.create_task_group() as tg:
            tg.start_soon(write, 40)
            await anyio.sleep(0.2)
            await leader.akill()
            assert config["counter"] >= -1  # the last snapshot keeps serving
        final = await store_state(writer, prefix)
        with anyio.fail_after(10):
            while config.snapshot.to_dict() != final:
                event = await next_event(events)
                if event.error is None and "counter" in event.keys:
                    seen.append(event.new["counter"])
        assert config.snapshot.to_dict() == final
        assert final["counter"] == 39
        # Every update applied once, in order: never a step back, never twice.
        assert seen == sorted(set(seen))


@pytest.mark.slow
async def test_a_member_without_a_leader_answers_at_once(etcd_cluster: EtcdCluster) -> None:
    lone, *rest = etcd_cluster.members
    for member in rest:
        await member.akill()
    # Until its election timeout passes, the member still believes in its old leader.
    await anyio.to_thread.run_sync(lone.wait_leaderless)
    source = Etcd([lone.client_url, *(m.client_url for m in rest)], prefix="/x/", timeout=3)
    async with aclosing(source):
        with anyio.fail_after(1):  # hasleader: 503 at once, not a 7 s linearizable timeout
            with pytest.raises(SourceUnavailable) as caught:
                await source.load(None)
    message = str(caught.value)
    assert "no endpoint answered (3 tried)" in message
    assert f"{lone.client_url}: HTTP 503: etcdserver: no leader" in message
    assert rest[0].client_url in message


@pytest.mark.slow
async def test_a_silent_member_is_left_after_read_idle_timeout(
    etcd_cluster: EtcdCluster, prefix: str
) -> None:
    leader = await etcd_cluster.aleader()
    follower = next(m for m in etcd_cluster.members if m is not leader)
    endpoints = [follower.client_url, leader.client_url]
    source = Etcd(
        endpoints, prefix=prefix, timeout=1, progress_notify_interval=1, read_idle_timeout=2
    )
    async with EtcdClient(leader.client_url) as writer:
        await writer.put(f"{prefix}a", "1")
        async with load(source) as config, config.changes() as events:
            await writer.put(f"{prefix}a", "2")
            await next_change(events)  # the watch is open, on the follower
            follower.pause()  # hangs with its connections open: only silence tells
            try:
                await writer.put(f"{prefix}a", "3")
                started = anyio.current_time()
                await next_change(events, seconds=6)
                assert config["a"] == 3
                assert anyio.current_time() - started >= 1.5  # noticed by silence, not luck
            finally:
                follower.resume()


@pytest.mark.slow
async def test_compaction_while_the_watched_member_is_down(
    etcd_cluster: EtcdCluster, prefix: str
) -> None:
    watched, *rest = etcd_cluster.members
    source = Etcd(watched.client_url, prefix=prefix, timeout=1, progress_notify_interval=NOTIFY)
    async with EtcdClient([m.client_url for m in rest], attempts=20) as writer:
        await writer.put(f"{prefix}a", "1")
        async with load(source, refresh_interval=60) as config, config.changes() as events:
            await watched.astop()
            await writer.put(f"{prefix}a", "2")
            await writer.txn({f"{prefix}b": "3", f"{prefix}c": "4"})
            await writer.delete(f"{prefix}a")
            await writer.compact()
            await watched.astart()  # catches up, compaction included
            event = await next_change(events, seconds=10)
            assert event.keys == {"a", "b", "c"}  # everything missed, in one version
            assert config.snapshot.to_dict() == await store_state(writer, prefix)
            assert config.snapshot.to_dict() == {"b": 3, "c": 4}


@pytest.mark.slow
async def test_etcd_down_keeps_the_last_good_and_recovers(
    make_etcd: Callable[..., EtcdCluster], caplog: pytest.LogCaptureFixture
) -> None:
    prefix = "/myapp/"
    async with make_etcd() as etcd, EtcdClient(etcd.endpoints, attempts=50) as writer:
        (member,) = etcd.members
        await writer.put(f"{prefix}a", "1")
        source = Etcd(etcd.endpoints, prefix=prefix, timeout=0.5, progress_notify_interval=NOTIFY)
        async with load(source, refresh_interval=1) as config, config.changes() as events:
            with caplog.at_level(logging.WARNING, "aioconfig"):
                await member.astop()
                event = await next_event(events, seconds=5)
                assert isinstance(event.error, SourceUnavailable)
                assert etcd.endpoints[0] in str(event.error)
                assert config["a"] == 1  # the last good keeps serving
                # Restart with the same data: the watch (or a poll) picks the next write up.
                await member.astart()
                await writer.put(f"{prefix}a", "2")
                await next_change(events, seconds=10)
                assert config["a"] == 2
            assert any("configuration refresh failed" in r.message for r in caplog.records)
            assert config.snapshot.to_dict() == await store_state(writer, prefix)


# ---------------------------------------------------------------------------------- fixtures
# These belong in tests/sources/conftest.py, but a second conftest.py stops mypy ("Duplicate
# module named 'conftest'": tests/ has no __init__.py) until [tool.mypy] sets
# explicit_package_bases = true; then import from tests.etcd_server (with pytest's
# pythonpath = ["."]) and move this block as it is.


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    """One etcd member for the whole module: tests keep to their own ``prefix``."""
    require_etcd()
    with EtcdCluster() as cluster:
        yield cluster


@pytest.fixture
def etcd_cluster() -> Iterator[EtcdCluster]:
    """Three members, for one test: it may kill, stop or pause them."""
    require_etcd()
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture
def make_etcd() -> Callable[..., EtcdCluster]:
    """For a test that needs an etcd of its own (options, auth, outages): ``EtcdCluster``."""
    require_etcd()
    return EtcdCluster


@pytest.fixture
def prefix() -> str:
    """A prefix no other test uses, so tests can share one etcd."""
    return f"/test-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
async def writer(etcd: EtcdCluster) -> AsyncIterator[EtcdClient]:
    async with EtcdClient(etcd.endpoints) as client:
        yield client
