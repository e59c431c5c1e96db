"""The refresh engine: single flight, schedule, backoff, last-known-good, sentinels, modes."""

from __future__ import annotations

import logging
import random
import statistics
from functools import partial
from typing import Any

import anyio
import pytest

from aioconfig import (
    ChangeEvent,
    ClosedError,
    LoadError,
    RefreshResult,
    Snapshot,
    SourceError,
    SourceUnavailable,
    ValidationError,
    WatchKey,
    load,
)
from aioconfig._schedule import backoff_delay, jittered
from aioconfig.sources import Static
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- single flight


async def test_a_thousand_concurrent_refreshes_cause_one_fetch_per_source() -> None:
    first = MutableSource({"a": 1}, name="first")
    second = MutableSource({"b": 1}, name="second")
    async with load(first, second, mode="manual") as config:
        first.set({"a": 2})
        first.gate = anyio.Event()  # hold the fetch so every caller arrives while it runs
        results: list[RefreshResult] = []

        async def call() -> None:
            results.append(await config.refresh(force=True))

        loads_before = (first.loads, second.loads)
        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            first.gate.set()
        assert (first.loads - loads_before[0], second.loads - loads_before[1]) == (1, 1)
        assert len(results) == 1000
        assert all(r is results[0] for r in results)
        assert results[0].changed and results[0].keys == {"a"}
        assert config["a"] == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh() -> None:
    source = MutableSource({"a": 1})
    async with load(source, mode="manual") as config:
        source.set({"a": 2})
        source.gate = anyio.Event()
        got: list[RefreshResult] = []

        async def patient() -> None:
            got.append(await config.refresh(force=True))

        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as impatient:
                tg.start_soon(patient)
                await anyio.wait_all_tasks_blocked()
                impatient.cancel()
            await anyio.wait_all_tasks_blocked()
            source.gate.set()
        assert got[0].changed
        assert config["a"] == 2


async def test_refreshes_after_the_flight_lands_start_a_new_one() -> None:
    source = MutableSource({"a": 1})
    async with load(source, mode="manual") as config:
        await config.refresh(force=True)
        await config.refresh(force=True)
        assert source.loads == 3


# ---------------------------------------------------------------- schedule


async def test_refresh_is_not_due_before_the_interval_has_passed() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1})
    async with load(source, mode="lazy", refresh_interval=30, clock=clock) as config:
        source.set({"a": 2})
        result = await config.refresh()
        assert not result.changed and result.error is None and source.loads == 1
        await clock.advance(29.9)
        assert not (await config.refresh()).changed
        await clock.advance(0.2)
        result = await config.refresh()
        assert result.changed and result.keys == {"a"} and source.loads == 2
        assert result.snapshot is config.snapshot and config.version == 2


async def test_manual_mode_fetches_only_when_forced() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1})
    async with load(source, mode="manual", refresh_interval=1, clock=clock) as config:
        source.set({"a": 2})
        await clock.advance(1000)
        assert not (await config.refresh()).changed
        assert source.loads == 1 and clock.sleepers == 0
        assert (await config.refresh(force=True)).changed
        assert config["a"] == 2


async def test_lazy_mode_runs_no_background_task() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1})
    async with load(source, mode="lazy", refresh_interval=10, clock=clock) as config:
        source.set({"a": 2})
        await clock.advance(100)
        assert config["a"] == 1 and source.loads == 1 and clock.sleepers == 0
        assert (await config.refresh()).changed


async def test_auto_mode_polls_every_jittered_interval() -> None:
    clock = FakeClock()
    source = MutableSource({"n": 0})
    async with load(source, refresh_interval=30, jitter=0.1, clock=clock, seed=1) as config:
        for n in range(1, 51):
            source.set({"n": n})
            await clock.advance(33.01)  # past the longest jittered wait
            assert config["n"] == n
    first, *delays = clock.sleeps
    assert 0 <= first <= 30  # the first poll lands anywhere in the first interval
    assert len(delays) >= 49
    assert all(27 <= d <= 33 for d in delays), delays
    assert statistics.pstdev(delays) > 1.0  # spread, not lockstep
    assert min(delays) < 28.5 and max(delays) > 31.5


def test_jitter_spreads_uniformly_within_bounds() -> None:
    rng = random.Random(7)
    samples = [jittered(30.0, 0.1, rng) for _ in range(10_000)]
    assert min(samples) >= 27.0 and max(samples) <= 33.0
    assert abs(statistics.mean(samples) - 30.0) < 0.1
    # A uniform spread over [27, 33] has a standard deviation of 6 / sqrt(12) ~ 1.73.
    assert 1.6 < statistics.pstdev(samples) < 1.85
    assert jittered(30.0, 0.0, rng) == 30.0


def test_backoff_grows_to_its_cap_with_full_jitter() -> None:
    rng = random.Random(3)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (60, 30.0)]:
        samples = [backoff_delay(failures, 1.0, 30.0, rng) for _ in range(2000)]
        assert 0 <= min(samples) < ceiling * 0.05
        assert ceiling * 0.95 < max(samples) <= ceiling


async def test_failures_back_off_and_a_success_resets_the_schedule() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1})
    async with load(source, refresh_interval=30, jitter=0, clock=clock, seed=5) as config:
        source.fail(SourceUnavailable("mutable", "connection refused"))
        await clock.advance(30)  # the first failing poll
        ceilings = []
        for failures in range(1, 8):
            assert config.statistics().consecutive_failures == failures
            delay = clock.sleeps[-1]
            ceilings.append(min(30.0, 2.0 ** (failures - 1)))
            assert 0 <= delay <= ceilings[-1]
            await clock.advance(delay)
        assert config["a"] == 1  # the last good configuration kept serving throughout
        source.fail(None)
        source.set({"a": 2})
        await clock.advance(30)
        assert config["a"] == 2
        assert config.statistics().consecutive_failures == 0
        assert clock.sleeps[-1] == 30.0  # back to the normal interval
        assert ceilings[-1] == 30.0


async def test_a_failed_lazy_refresh_may_be_retried_after_the_backoff() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1})
    async with load(source, mode="lazy", refresh_interval=30, clock=clock, seed=1) as config:
        await clock.advance(30)
        source.fail(SourceUnavailable("mutable", "down"))
        assert (await config.refresh()).error is not None
        assert (await config.refresh()).error is None  # not due again yet: no fetch, no error
        assert source.loads == 2
        await clock.advance(1.0)  # the first backoff is at most 1 s
        source.fail(None)
        source.set({"a": 2})
        assert (await config.refresh()).changed


# ---------------------------------------------------------------- last known good


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SourceUnavailable("db.json", "connection refused"), "db.json: connection refused"),
        (SourceError("db.json", "bad data"), "db.json: bad data"),
        (ZeroDivisionError("password=hunter2"), "mutable: unexpected ZeroDivisionError"),
    ],
)
async def test_a_failing_source_never_replaces_the_last_good_snapshot(
    error: Exception, expected: str
) -> None:
    source = MutableSource({"a": 1})
    errors: list[Exception] = []
    async with load(source, mode="manual", on_refresh_error=errors.append) as config:
        good = config.snapshot
        source.fail(error)
        result = await config.refresh(force=True)
        assert not result.changed
        assert str(result.error) == expected
        assert config.snapshot is good and config["a"] == 1
        assert errors == [result.error]
        assert config.statistics().errors == 1
        assert config.statistics().last_error is result.error


async def test_several_failing_sources_are_reported_together() -> None:
    first = MutableSource({"a": 1}, name="first")
    second = MutableSource({"b": 1}, name="second")
    async with load(first, second, mode="manual") as config:
        first.fail(SourceUnavailable("first", "down"))
        second.fail(SourceUnavailable("second", "timed out"))
        result = await config.refresh(force=True)
        assert isinstance(result.error, LoadError)
        assert str(result.error) == (
            "could not load the configuration:\n  - first: down\n  - second: timed out"
        )


async def test_a_rejected_candidate_is_never_swapped_in() -> None:
    def validate(snapshot: Snapshot) -> None:
        if snapshot["port"] <= 0:
            raise ValueError("port must be positive")

    source = MutableSource({"port": 80})
    async with load(source, mode="manual", validate=validate) as config:
        source.set({"port": -1})
        result = await config.refresh(force=True)
        assert isinstance(result.error, ValidationError)
        assert str(result.error) == "candidate rejected by validate=: ValueError"
        assert str(result.error.__cause__) == "port must be positive"  # chained, for tracebacks
        assert config["port"] == 80 and config.version == 1
        source.set({"port": 81})
        result = await config.refresh(force=True)
        assert result.changed and config["port"] == 81
        assert config.version == 2  # the rejected candidate consumed no version


async def test_an_async_validator_may_reject_with_its_own_validation_error() -> None:
    seen: list[int] = []

    async def validate(snapshot: Snapshot) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(snapshot.version)
        if snapshot.get("mode") == "bad":
            raise ValidationError("mode 'bad' is not allowed")

    source = MutableSource({"mode": "ok"})
    async with load(source, mode="manual", validate=validate) as config:
        source.set({"mode": "bad"})
        result = await config.refresh(force=True)
        assert str(result.error) == "mode 'bad' is not allowed"
        assert config["mode"] == "ok"
    assert seen == [1, 2]


async def test_an_unchanged_refresh_makes_no_new_snapshot() -> None:
    source = MutableSource({"a": 1})
    async with load(source, mode="manual") as config:
        before = config.snapshot
        source.set({"a": 1})  # a new version token, the same content
        result = await config.refresh(force=True)
        assert not result.changed and result.error is None
        assert config.snapshot is before


# ---------------------------------------------------------------- sentinel keys


async def test_changes_wait_for_the_sentinel_then_apply_together() -> None:
    source = MutableSource({"sentinel": 1, "db": {"host": "a", "port": 1}})
    changes: list[ChangeEvent] = []
    async with load(
        source, mode="manual", refresh_on=[WatchKey("sentinel")], on_change=changes.append
    ) as config:
        source.set({"sentinel": 1, "db": {"host": "b", "port": 1}})
        assert not (await config.refresh(force=True)).changed
        source.set({"sentinel": 1, "db": {"host": "b", "port": 2}})
        assert not (await config.refresh(force=True)).changed
        assert config["db.host"] == "a"
        source.set({"sentinel": 2, "db": {"host": "b", "port": 2}})
        result = await config.refresh(force=True)
        assert result.changed
        assert result.keys == {"sentinel", "db.host", "db.port"}
        assert (config["db.host"], config["db.port"]) == ("b", 2)
        assert len(changes) == 1 and changes[0].old.version == 1


async def test_staged_data_is_applied_even_if_the_source_then_reports_not_modified() -> None:
    db = MutableSource({"db": {"host": "a"}}, name="db")
    flags = MutableSource({"sentinel": 1}, name="flags")
    async with load(db, flags, mode="manual", refresh_on=["sentinel"]) as config:
        db.set({"db": {"host": "b"}})
        await config.refresh(force=True)  # staged: db's new token is remembered
        flags.set({"sentinel": 2})
        result = await config.refresh(force=True)  # db answers "not modified" now
        assert result.keys == {"sentinel", "db.host"}
        assert config["db.host"] == "b"


# ---------------------------------------------------------------- push


async def test_a_pushing_source_is_watched_not_polled() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1}, push=True)
    async with load(source, refresh_interval=30, clock=clock) as config:
        async with config.changes() as events:
            source.set({"a": 2})
            with anyio.fail_after(5):
                event = await events.__anext__()
        assert event.keys == {"a"} and config["a"] == 2
        await clock.advance(100)
        assert source.loads == 1  # only the initial load: pushes need no polling


async def test_a_broken_watch_falls_back_to_polling_until_it_reopens() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1}, push=True)
    errors: list[Exception] = []
    async with load(
        source, refresh_interval=30, clock=clock, on_refresh_error=errors.append, seed=2
    ) as config:
        source.fail(SourceUnavailable("mutable", "stream reset"))
        source.set({"a": 2})  # wakes the watch, which raises
        await clock.advance(0)
        assert [str(e) for e in errors] == ["mutable: stream reset"]
        assert config["a"] == 1
        source.fail(None)
        await clock.advance(31)  # the watch reopens after its backoff and delivers
        assert config["a"] == 2


# ---------------------------------------------------------------- callbacks


async def test_callbacks_may_be_sync_or_async_and_never_break_refreshing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, Any]] = []

    def on_change(event: ChangeEvent) -> None:
        calls.append(("change", sorted(event.keys)))
        raise RuntimeError("callback bug")

    async def on_success(result: RefreshResult) -> None:
        await anyio.lowlevel.checkpoint()
        calls.append(("success", result.changed))

    async def on_error(error: Exception) -> None:
        calls.append(("error", str(error)))
        raise RuntimeError("another callback bug")

    source = MutableSource({"a": 1})
    async with load(
        source,
        mode="manual",
        on_change=on_change,
        on_refresh_success=on_success,
        on_refresh_error=on_error,
    ) as config:
        source.set({"a": 2})
        with caplog.at_level(logging.ERROR, logger="aioconfig"):
            assert (await config.refresh(force=True)).changed
            source.fail(SourceUnavailable("mutable", "down"))
            await config.refresh(force=True)
            source.fail(None)
            source.set({"a": 3})
            assert (await config.refresh(force=True)).changed
    assert calls == [
        ("change", ["a"]),
        ("success", True),
        ("error", "mutable: down"),
        ("change", ["a"]),
        ("success", True),
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "on_change callback raised",
        "on_refresh_error callback raised",
        "on_change callback raised",
    ]


# ---------------------------------------------------------------- consistency and cancellation


async def test_readers_never_see_two_versions_in_one_snapshot() -> None:
    keys = [f"k{i}" for i in range(100)]
    source = MutableSource(dict.fromkeys(keys, 0))
    async with load(source, mode="manual") as config:
        stop = anyio.Event()
        torn: list[int] = []
        reads = 0

        async def reader() -> None:
            nonlocal reads
            while not stop.is_set():
                snap = config.snapshot
                values = {snap[k] for k in keys}
                if len(values) != 1 or values != {snap.version - 1}:
                    torn.append(snap.version)
                reads += 1
                await anyio.lowlevel.checkpoint()

        def thread_reader() -> None:
            nonlocal reads
            while not stop.is_set():
                snap = config.snapshot
                if len({snap[k] for k in keys}) != 1:
                    torn.append(snap.version)
                reads += 1

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(reader)
            tg.start_soon(anyio.to_thread.run_sync, thread_reader)
            for n in range(1, 201):
                source.set(dict.fromkeys(keys, n))
                assert (await config.refresh(force=True)).changed
            stop.set()
        assert torn == []
        assert config.version == 201 and reads > 200


async def test_aclose_in_the_middle_of_a_refresh_stops_it_cleanly() -> None:
    source = MutableSource({"a": 1})
    config = await load(source, mode="manual")
    source.gate = anyio.Event()
    outcome: list[BaseException] = []

    async def refresher() -> None:
        try:
            await config.refresh(force=True)
        except ClosedError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresher)
        await anyio.wait_all_tasks_blocked()
        await config.aclose()
    assert [str(e) for e in outcome] == ["the Config was closed during the refresh"]
    assert source.closed
    with pytest.raises(ClosedError, match="this Config is closed"):
        await config.refresh(force=True)


async def test_a_watch_that_keeps_failing_to_reopen_is_reported_once() -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1}, push=True, name="pusher")
    watch_errors: list[Exception] = []
    async with load(
        source,
        refresh_interval=30,
        jitter=0,  # the first poll comes at 30 s exactly
        clock=clock,
        on_refresh_error=watch_errors.append,
        seed=4,
    ) as config:
        source.fail(SourceUnavailable("pusher", "stream reset"))
        source.set({"a": 2})  # wakes the watch, which raises; reopening raises again
        for _ in range(5):
            await clock.advance(1.0)  # several reopening attempts, inside the first poll wait
        assert [str(e) for e in watch_errors] == ["pusher: stream reset"]
        await clock.advance(30)  # the poll loop covers the source: the same failure again
        assert len(watch_errors) == 1  # reported once per distinct error
        source.fail(None)
        await clock.advance(31)
        assert config["a"] == 2


async def test_a_sentinel_may_name_a_whole_section() -> None:
    source = MutableSource({"release": {"id": 1, "by": "ci"}, "db": {"host": "a"}})
    async with load(source, mode="manual", refresh_on=["release"]) as config:
        source.set({"release": {"id": 1, "by": "ci"}, "db": {"host": "b"}})
        assert not (await config.refresh(force=True)).changed
        source.set({"release": {"id": 2, "by": "ci"}, "db": {"host": "b"}})
        assert (await config.refresh(force=True)).keys == {"release.id", "db.host"}


async def test_an_optional_source_keeps_its_data_through_a_blip() -> None:
    overlay = MutableSource({"feature": {"on": True}}, name="overlay", optional=True)
    async with load(Static({"feature": {"on": False}}), overlay, mode="manual") as config:
        overlay.fail(SourceUnavailable("overlay", "HTTP 503 Service Unavailable"))
        result = await config.refresh(force=True)
        assert str(result.error) == "overlay: HTTP 503 Service Unavailable"
        assert config["feature.on"] is True
        overlay.fail(SourceUnavailable("overlay", "HTTP 404 Not Found", transient=False))
        result = await config.refresh(force=True)
        assert result.error is None and result.keys == {"feature.on"}
        assert config["feature.on"] is False  # gone for good: it counts as empty


async def test_an_optional_source_down_at_start_up_does_not_block_it() -> None:
    overlay = MutableSource({"feature": {"on": True}}, name="overlay", optional=True)
    overlay.fail(SourceUnavailable("overlay", "connection refused"))
    async with load(Static({"feature": {"on": False}}), overlay, mode="manual") as config:
        assert config["feature.on"] is False
        overlay.fail(None)
        assert (await config.refresh(force=True)).keys == {"feature.on"}


async def test_a_restarted_fleet_spreads_its_first_polls_over_an_interval() -> None:
    firsts = []
    for seed in range(200):
        clock = FakeClock()
        async with load(MutableSource({}), clock=clock, refresh_interval=30, seed=seed):
            await clock.advance(0)
            firsts.append(clock.sleeps[0])
    assert min(firsts) < 3 and max(firsts) > 27
    assert 1 / 6 < sum(f < 10 for f in firsts) / len(firsts) < 1 / 2


async def test_a_poll_that_began_before_a_push_never_rolls_it_back() -> None:
    pusher = MutableSource({"v": 0}, name="pusher", push=True)
    slow = MutableSource({"other": 1}, name="slow")
    hold: anyio.Event | None = None

    async def validate(candidate: Snapshot) -> None:
        if hold is not None:
            await hold.wait()  # keeps the watch's apply of v=1 waiting

    async with load(pusher, slow, refresh_interval=30, jitter=0, validate=validate) as config:
        hold = anyio.Event()
        pusher.set({"v": 1})
        await anyio.wait_all_tasks_blocked()  # the watch is applying v=1, held in validate
        slow.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(config.refresh, force=True))
            await anyio.wait_all_tasks_blocked()  # the poll read v=1; the slow source waits
            hold.set()
            hold = None
            await anyio.wait_all_tasks_blocked()
            pusher.set({"v": 2})  # pushed and applied while the poll is still on its way
            await anyio.wait_all_tasks_blocked()
            assert config["v"] == 2
            slow.set({"other": 2})
            slow.gate.set()
        assert config["v"] == 2  # the polled v=1 was dropped, not swapped back in
        assert config["other"] == 2
