"""The engine's guarantees: re-entrancy, order, single flight with generations, shutdown.

Each test here names the defect of the engine before the rewrite that it would have caught.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
from collections.abc import Hashable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from http_helpers import wait_until

from aioconfig import (
    ChangeEvent,
    ClosedError,
    Config,
    ConfigError,
    FileCache,
    InitialLoadError,
    RefreshResult,
    Snapshot,
    SourceUnavailable,
    ValidationError,
    load,
)
from aioconfig._engine import _Notice
from aioconfig.sources import NotModified, Payload, Source, Static
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio


class ReadThenWait(Source):
    """A source that reads its data as a load begins, then waits on ``gate`` to answer: a
    fetch that is in flight holds the data of the moment it began."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)
        self.gate: anyio.Event | None = None
        self.loads = 0

    @property
    def name(self) -> str:
        return "read-then-wait"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        self.loads += 1
        seen = copy.deepcopy(self.data)
        if self.gate is not None:
            await self.gate.wait()
        if token == repr(seen):
            return NotModified(token)
        return Payload(seen, repr(seen))


# ---------------------------------------------------------------- 1. re-entrant refresh


@pytest.mark.parametrize("hook", ["on_change", "on_refresh_success", "on_refresh_error"])
async def test_refresh_inside_a_callback_returns(hook: str) -> None:
    source = MutableSource({"n": 0})
    inner: list[RefreshResult] = []

    async def callback(_: object) -> None:
        if not inner:
            inner.append(RefreshResult())  # once: the inner refresh calls back too
            inner.append(await config.refresh(force=True))

    hooks: dict[str, Any] = {hook: callback}
    config = load(source, mode="manual", **hooks)
    async with config:
        source.set({"n": 1})
        if hook == "on_refresh_error":
            source.fail(SourceUnavailable("mutable", "down"))
        with anyio.fail_after(5):
            await config.refresh(force=True)
        assert len(inner) == 2
        source.fail(None)
        source.set({"n": 2})
        with anyio.fail_after(5):
            assert (await config.refresh(force=True)).changed  # nothing is left stuck
        assert config["n"] == 2


async def test_after_a_reentrant_refresh_the_poll_loop_goes_on() -> None:
    clock = FakeClock()
    source = MutableSource({"n": 0})
    calls = 0

    async def on_change(event: ChangeEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await config.refresh(force=True)

    config = load(source, refresh_interval=10, jitter=0, clock=clock, on_change=on_change)
    async with config:
        for n in range(1, 4):
            source.set({"n": n})
            await clock.advance(10)
            assert config["n"] == n


# ---------------------------------------------------------------- 2. aclose inside a callback


async def test_aclose_inside_a_callback_under_async_with() -> None:
    source = MutableSource({"n": 0})

    async def on_change(event: ChangeEvent) -> None:
        await config.aclose()

    with anyio.fail_after(5):
        async with load(source, mode="manual", on_change=on_change) as config:
            source.set({"n": 1})
            await config.refresh(force=True)
            with pytest.raises(ClosedError):
                config.get("n")
            await wait_until(lambda: source.closed)  # the shutdown the callback scheduled


async def test_aclose_inside_a_callback_under_await_load() -> None:
    source = MutableSource({"n": 0})

    def on_change(event: ChangeEvent) -> None:
        closing.append(event.new.version)

    async def on_success(result: RefreshResult) -> None:
        await config.aclose()

    closing: list[int] = []
    with anyio.fail_after(5):
        config = await load(
            source, mode="manual", on_change=on_change, on_refresh_success=on_success
        )
        source.set({"n": 1})
        await config.refresh(force=True)
        await anyio.wait_all_tasks_blocked()
        await config.aclose()  # returns: the shutdown has finished
    assert source.closed and closing == [2]
    with pytest.raises(ClosedError):
        await config.refresh(force=True)


# ---------------------------------------------------------------- 3. small buffers


@pytest.mark.parametrize("max_buffer", [1, 2, 3])
async def test_any_buffer_survives_changes_and_errors_unread(max_buffer: int) -> None:
    source = MutableSource({"n": 0})
    async with load(source, mode="manual") as config, config.changes(max_buffer=max_buffer) as ev:
        for n in range(1, 6):
            source.set({"n": n})
            await config.refresh(force=True)
            source.fail(SourceUnavailable("mutable", f"down {n}"))
            await config.refresh(force=True)
            source.fail(None)
        assert config.statistics().state == "opened"
        got = [await ev.__anext__() for _ in range(ev.pending())]
        changes = [e for e in got if e.error is None]
        assert changes and changes[-1].new is config.snapshot
        assert changes[0].old.version == 1  # every change is accounted for, folded or not
    assert config.statistics().state == "closed"


async def test_await_load_with_a_full_buffer_stays_open() -> None:
    source = MutableSource({"n": 0})
    config = await load(source, mode="manual")
    try:
        async with config.changes(max_buffer=1) as events:
            source.set({"n": 1})
            await config.refresh(force=True)
            source.fail(SourceUnavailable("mutable", "down"))
            await config.refresh(force=True)
            assert config["n"] == 1
            assert (await events.__anext__()).keys == {"n"}
    finally:
        await config.aclose()


# ---------------------------------------------------------------- 5. cancelled aclose


class SlowToClose(MutableSource):
    def __init__(self) -> None:
        super().__init__({"a": 1})
        self.release = anyio.Event()

    async def aclose(self) -> None:
        await self.release.wait()
        await super().aclose()


async def test_a_cancelled_aclose_still_finishes_and_cancels_no_one_else() -> None:
    source = SlowToClose()
    config = await load(source, mode="manual")
    outcomes: list[str] = []

    async def impatient() -> None:
        with anyio.move_on_after(0.01) as scope:
            await config.aclose()
        outcomes.append("impatient returned" + (" (cancelled)" if scope.cancel_called else ""))

    async def patient() -> None:
        await config.aclose()
        outcomes.append("patient returned")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            tg.start_soon(patient)
            await anyio.sleep(0.05)
            assert outcomes == []  # both wait: closing is shielded
            source.release.set()
    assert sorted(outcomes) == ["impatient returned (cancelled)", "patient returned"]
    assert source.closed


# ---------------------------------------------------------------- 6. ordered callbacks and cache


async def test_callbacks_and_cache_writes_follow_version_order(tmp_path: Path) -> None:
    first = MutableSource({"a": 0}, name="first", push=True)
    second = MutableSource({"b": 0}, name="second", push=True)
    seen: list[tuple[int, int]] = []
    running = 0
    overlapped = False

    async def on_change(event: ChangeEvent) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        seen.append((event.old.version, event.new.version))
        running -= 1

    path = tmp_path / "cache.json"
    async with load(first, second, cache=FileCache(path), on_change=on_change) as config:
        for n in range(1, 6):
            first.set({"a": n})
            second.set({"b": n})
            await anyio.lowlevel.checkpoint()
        await wait_until(
            lambda: (config["a"], config["b"], len(seen)) == (5, 5, config.version - 1)
        )
        final = config.version
    assert not overlapped
    assert seen == [(v, v + 1) for v in range(1, final)]
    cached = orjson.loads(path.read_bytes())
    assert cached["version"] == final and cached["data"] == {"a": 5, "b": 5}


# ---------------------------------------------------------------- 7. force means a fresh fetch


async def test_a_forced_refresh_never_joins_a_fetch_that_began_before_it() -> None:
    source = ReadThenWait({"v": 1})
    async with load(source, mode="manual") as config:
        source.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(config.refresh, force=True))  # in flight, holding {"v": 1}
            await anyio.wait_all_tasks_blocked()
            source.data = {"v": 2}  # the store is written after that fetch began
            results: list[RefreshResult] = []

            async def forced() -> None:
                results.append(await config.refresh(force=True))

            tg.start_soon(forced)
            await anyio.wait_all_tasks_blocked()
            source.gate.set()
        assert results[0].changed and results[0].snapshot is not None
        assert results[0].snapshot["v"] == 2 and config["v"] == 2
        assert source.loads == 3  # the first load, the flight in progress, the forced one


async def test_forced_callers_that_arrive_together_still_share_one_fetch() -> None:
    source = ReadThenWait({"v": 1})
    async with load(source, mode="manual") as config:
        source.gate = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(config.refresh, force=True))
            await anyio.wait_all_tasks_blocked()
            source.data = {"v": 2}
            for _ in range(100):
                tg.start_soon(
                    partial(config.refresh, force=True)
                )  # all after the first fetch began
            await anyio.wait_all_tasks_blocked()
            source.gate.set()
        assert source.loads == 3 and config["v"] == 2


# ---------------------------------------------------------------- 8. models= errors


@dataclasses.dataclass
class Port:
    port: int

    def __post_init__(self) -> None:
        if self.port < 1024:
            raise ValueError("a privileged port")


async def test_a_model_that_raises_rejects_at_start_up() -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(Static({"port": 80}), models=[Port])
    assert "candidate rejected by model Port: ValueError" in str(info.value)
    assert "privileged" not in str(info.value)  # a user's text may quote a secret
    assert isinstance(info.value.errors[0], ValidationError)


async def test_a_model_that_raises_rejects_a_refresh_without_crashing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = MutableSource({"port": 8080})
    async with load(source, mode="manual", models=[Port]) as config:
        source.set({"port": 80})
        with caplog.at_level(logging.ERROR, logger="aioconfig"):
            result = await config.refresh(force=True)
        assert isinstance(result.error, ValidationError)
        assert str(result.error) == "candidate rejected by model Port: ValueError"
        assert config["port"] == 8080
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no "crashed"


async def test_a_rejected_push_is_reported_once_and_never_blamed_on_the_source() -> None:
    clock = FakeClock()
    source = MutableSource({"port": 8080}, push=True)
    errors: list[Exception] = []
    async with load(
        source, models=[Port], clock=clock, refresh_interval=30, on_refresh_error=errors.append
    ) as config:
        source.set({"port": 80})
        await clock.advance(0)
        for _ in range(10):
            await clock.advance(0.5)
        await clock.advance(120)  # polls would fetch the same candidate again
        assert len(errors) == 1 and isinstance(errors[0], ValidationError)
        assert config["port"] == 8080
        source.set({"port": 8081})
        await clock.advance(0)
        assert config["port"] == 8081


# ---------------------------------------------------------------- 9. aclose while opening


async def test_aclose_during_the_first_load_aborts_async_with() -> None:
    source = MutableSource({"a": 1})
    source.gate = anyio.Event()
    config = load(source)
    entered = False

    async def opener() -> None:
        nonlocal entered
        with pytest.raises(ClosedError, match="closed while it was opening"):
            async with config:
                entered = True

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(opener)
            await anyio.wait_all_tasks_blocked()
            await config.aclose()
    assert not entered and source.closed


async def test_aclose_during_the_first_load_aborts_await_load() -> None:
    source = MutableSource({"a": 1})
    source.gate = anyio.Event()
    config = load(source)
    failures: list[BaseException] = []

    async def opener() -> None:
        try:
            await config
        except ClosedError as exc:
            failures.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(opener)
            await anyio.wait_all_tasks_blocked()
            await config.aclose()  # does not wait for the load to end: the gate stays shut
    assert [str(e) for e in failures] == ["the Config was closed while it was opening"]
    assert source.closed


# ---------------------------------------------------------------- 10. folding keeps read order


async def test_events_are_read_in_the_order_they_happened() -> None:
    source = MutableSource({"n": 0})
    async with load(source, mode="manual") as config, config.changes(max_buffer=2) as events:
        source.set({"n": 1})
        await config.refresh(force=True)  # v1 -> v2
        source.fail(SourceUnavailable("mutable", "down"))
        await config.refresh(force=True)  # an error while v2 serves
        source.fail(None)
        source.set({"n": 2})
        await config.refresh(force=True)  # v2 -> v3, into a full buffer
        got = [await events.__anext__() for _ in range(events.pending())]
    for before, after in itertools.pairwise(got):
        assert after.old.version >= before.new.version, got
    assert got[-1].new.version == 3


async def test_a_folded_event_says_which_versions_it_spans() -> None:
    source = MutableSource({"n": 0})
    async with load(source, mode="manual") as config, config.changes(max_buffer=1) as events:
        for n in range(1, 4):
            source.set({"n": n})
            await config.refresh(force=True)
        event = await events.__anext__()
    assert (event.old.version, event.new.version) == (1, 4)
    assert list(event.versions) == [2, 3, 4]


# ---------------------------------------------------------------- 11. max_init_wait in validate


async def test_max_init_wait_running_out_inside_validate_names_it() -> None:
    async def validate(candidate: Snapshot) -> None:
        await anyio.sleep_forever()

    with pytest.raises(InitialLoadError) as info:
        await load(Static({"a": 1}), validate=validate, max_init_wait=0.05)
    assert info.value.errors
    assert "validate= gave no answer before max_init_wait ran out" in str(info.value)


# ---------------------------------------------------------------- 12. trio


def test_await_load_works_under_trio() -> None:
    pytest.importorskip("trio")

    async def main() -> tuple[int, bool]:
        source = MutableSource({"a": 1})
        config = await load(source, mode="manual")
        source.set({"a": 2})
        await config.refresh(force=True)
        value = config["a"]
        await config.aclose()
        return value, source.closed

    assert anyio.run(main, backend="trio") == (2, True)


def test_async_with_load_works_under_trio() -> None:
    pytest.importorskip("trio")

    async def main() -> int:
        async with load(Static({"a": 1}), refresh_interval=10) as config:
            value: int = config["a"]
            return value

    assert anyio.run(main, backend="trio") == 1


# ---------------------------------------------------------------- a dead background says why


class BrokenClock(FakeClock):
    """A clock that breaks on its second sleep: the poll loop fails against all odds."""

    async def sleep(self, seconds: float) -> None:
        if self.sleeps:
            raise RuntimeError("the clock broke")
        await super().sleep(seconds)


async def test_a_background_that_dies_says_why_on_every_use() -> None:
    clock = BrokenClock()
    config: Config = await load(MutableSource({"a": 1}), clock=clock, refresh_interval=1)
    await clock.advance(2)
    with pytest.raises(ConfigError, match="background work failed: RuntimeError: the clock broke"):
        config.get("a")
    with pytest.raises(ConfigError, match="the clock broke"):
        await config.refresh(force=True)
    with pytest.raises(ConfigError, match="the clock broke"):
        await config.aclose()
    assert config.statistics().state == "failed"


async def test_refresh_inside_validate_is_refused_not_deadlocked() -> None:
    source = MutableSource({"a": 1})
    problems: list[str] = []

    async def validate(candidate: Snapshot) -> None:
        if candidate.version > 1:
            try:
                await config.refresh(force=True)
            except RuntimeError as exc:
                problems.append(str(exc))

    config = load(source, mode="manual", validate=validate)
    async with config:
        source.set({"a": 2})
        with anyio.fail_after(5):
            assert (await config.refresh(force=True)).changed
    assert problems and "inside validate=" in problems[0]


class BrokenPayloads(MutableSource):
    """Breaks the Source contract on demand: flags that are not a FlagConfig."""

    broken = False

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        answer = await super().load(token)
        if self.broken and isinstance(answer, Payload):
            return dataclasses.replace(answer, flags="not flags")  # type: ignore[arg-type]
        return answer


async def test_a_bug_in_one_step_costs_that_step_only(caplog: pytest.LogCaptureFixture) -> None:
    source = BrokenPayloads({"a": 1})
    async with load(source, mode="manual") as config:
        source.broken = True
        source.set({"a": 2})
        with caplog.at_level(logging.ERROR, logger="aioconfig"):
            result = await config.refresh(force=True)
        assert str(result.error) == "refresh crashed: AttributeError"
        assert config.statistics().engine_errors == 1
        assert [r.getMessage() for r in caplog.records] == ["aioconfig engine error"]
        source.broken = False
        source.set({"a": 3})
        assert (await config.refresh(force=True)).changed and config["a"] == 3


@pytest.mark.parametrize("steps", range(8))
async def test_closing_right_after_a_push_leaves_the_serving_version_in_the_cache(
    tmp_path: Path, steps: int
) -> None:
    path = tmp_path / "cache.json"
    source = MutableSource({"n": 0}, push=True)
    async with load(source, cache=FileCache(path)) as config:
        source.set({"n": 1})
        for _ in range(steps):
            await anyio.lowlevel.checkpoint()
        serving = config.version
    cached = orjson.loads(path.read_bytes())
    assert cached["version"] == serving
    assert cached["data"] == {"n": serving - 1}


async def test_an_outcome_decided_after_close_leaves_the_closed_answer() -> None:
    # A big build runs in a worker thread and is not abandoned: if it ends after stop() but
    # before a woken waiter reads its flight, the waiter must still read "closed".
    config = await load(MutableSource({"a": 1}), mode="manual")
    engine = config._engine
    flight = engine._new_flight([0])
    engine.stop()
    engine._resolve(flight, _Notice(RefreshResult(snapshot=config.snapshot)))
    assert flight.result is not None and isinstance(flight.result.error, ClosedError)
    await config.aclose()
