"""Change events: filtering, bounded buffers, error events, cancellation."""

from __future__ import annotations

import anyio
import pytest

from aioconfig import ChangeEvent, SourceUnavailable, load
from aioconfig._events import key_matches
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio


def test_key_matching_covers_prefixes_in_both_directions() -> None:
    assert key_matches("db.port", ["db"])
    assert key_matches("db", ["db"])
    assert key_matches("db", ["db.port"])  # "db" was a leaf and turned into something else
    assert not key_matches("dbx.port", ["db"])
    assert not key_matches("cache.port", ["db", "feature"])


async def test_events_carry_old_new_and_the_changed_keys() -> None:
    source = MutableSource({"db": {"host": "a", "port": 1}, "x": 1})
    async with load(source, mode="manual") as config:
        async with config.changes() as events:
            source.set({"db": {"host": "a", "port": 2}, "y": 1})
            await config.refresh(force=True)
            event = await events.__anext__()
        assert event.keys == {"db.port", "x", "y"}
        assert event.old.version == 1 and event.new.version == 2
        assert event.old["db.port"] == 1 and event.new["db.port"] == 2
        assert event.error is None
        assert repr(event) == "<ChangeEvent 1->2 keys=['db.port', 'x', 'y']>"


async def test_subscriptions_filter_by_keys_and_prefixes() -> None:
    source = MutableSource({"db": {"port": 1}, "cache": {"ttl": 1}})
    async with load(source, mode="manual") as config:
        async with config.changes(keys=["db"]) as db_events, config.changes("cache.ttl") as cache:
            source.set({"db": {"port": 1}, "cache": {"ttl": 2}})
            await config.refresh(force=True)
            source.set({"db": {"port": 2}, "cache": {"ttl": 2}})
            await config.refresh(force=True)
            assert db_events.pending() == 1 and cache.pending() == 1
            assert (await db_events.__anext__()).keys == {"db.port"}
            cache_event = await cache.__anext__()
            assert cache_event.keys == {"cache.ttl"} and cache_event.new.version == 2


async def test_a_slow_subscriber_is_coalesced_and_never_blocks_the_refresh() -> None:
    source = MutableSource({"n": 0, "other": 0})
    async with load(source, mode="manual") as config:
        async with config.changes(max_buffer=4) as slow, config.changes() as fast:
            for n in range(1, 11):
                source.set({"n": n, "other": 0 if n != 5 else 1})
                await config.refresh(force=True)
                await fast.__anext__()
            assert slow.pending() == 4 and slow.coalesced == 6
            got = [await slow.__anext__() for _ in range(4)]
        # Versions are contiguous and the last event ends at the latest snapshot.
        assert [(e.old.version, e.new.version) for e in got] == [(1, 2), (2, 3), (3, 4), (4, 11)]
        assert got[-1].keys == {"n", "other"}  # "other" changed in an intermediate version
        assert got[-1].new is config.snapshot


async def test_error_events_reach_every_subscriber_once_per_failure() -> None:
    source = MutableSource({"db": {"port": 1}})
    async with load(source, mode="manual") as config:
        async with config.changes(keys=["unrelated"]) as events:
            source.fail(SourceUnavailable("mutable", "down"))
            await config.refresh(force=True)
            await config.refresh(force=True)  # the same failure: not reported again
            source.fail(SourceUnavailable("mutable", "timed out"))
            await config.refresh(force=True)
            first = await events.__anext__()
            second = await events.__anext__()
            assert str(second.error) == "mutable: timed out"
            assert events.pending() == 0
        assert str(first.error) == "mutable: down" and first.keys == frozenset()
        assert first.old is first.new is config.snapshot
        assert "error=SourceUnavailable" in repr(first)


async def test_a_full_buffer_keeps_the_newest_error() -> None:
    source = MutableSource({"n": 0})
    async with load(source, mode="manual") as config:
        async with config.changes(max_buffer=2) as events:
            for n in range(3):
                source.fail(SourceUnavailable("mutable", f"down {n}"))
                await config.refresh(force=True)
            source.fail(None)
            source.set({"n": 1})
            await config.refresh(force=True)
            got = [await events.__anext__() for _ in range(2)]
        described = [str(e.error) if e.error else sorted(e.keys) for e in got]
        assert described == ["mutable: down 2", ["n"]]


async def test_streams_end_when_the_config_closes() -> None:
    source = MutableSource({"a": 1})
    received: list[ChangeEvent] = []
    async with load(source, mode="manual") as config:

        async def consume() -> None:
            async with config.changes() as events:
                async for event in events:
                    received.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            source.set({"a": 2})
            await config.refresh(force=True)
            await config.aclose()
    assert [sorted(e.keys) for e in received] == [["a"]]


async def test_a_cancelled_subscriber_unsubscribes() -> None:
    source = MutableSource({"a": 1})
    async with load(source, mode="manual") as config:

        async def consume() -> None:
            async with config.changes() as events:
                async for _ in events:
                    pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            assert config.statistics().subscribers == 1
            tg.cancel_scope.cancel()
        assert config.statistics().subscribers == 0
        source.set({"a": 2})
        assert (await config.refresh(force=True)).changed


def test_max_buffer_must_be_positive() -> None:
    from aioconfig._events import Hub

    with pytest.raises(ValueError, match="max_buffer must be at least 1, got 0"):
        Hub().subscribe(None, 0)
