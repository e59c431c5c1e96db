"""Big candidates are built in a worker thread, small ones on the loop (issue 10).

The engine's applier awaits ``Pipeline.candidate`` in a worker thread when the updates are big
(``Pipeline.costly``), so the event loop keeps running while a big document is merged, indexed
and validated. Which thread built a candidate is seen from inside: a validator's condition
records the thread it runs in. A ticker measures the loop's longest gap for the failure
messages only: nothing here asserts on timing.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Hashable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
import pytest
from http_helpers import wait_until

from aioconfig import (
    ChangeEvent,
    ClosedError,
    ConfigError,
    FileCache,
    InitialLoadError,
    InitialValidationError,
    ParseError,
    ValidationError,
    Validator,
    _cache,
    load,
)
from aioconfig._pipeline import OFF_LOOP_VALUES, Pipeline, _values_reach
from aioconfig.sources import File
from aioconfig.sources._base import NotModified, Payload, Source

pytestmark = pytest.mark.anyio

BIG = 60_000  # values: six times the threshold, a build of some 30 ms
SMALL = 100


def document(values: int, changed: str = "value-1") -> dict[str, Any]:
    """``values`` leaves: ``{"s0": {"g0": {"k0": 0, "k1": "value-1", ...}}}``, 1,000 a section."""
    data: dict[str, Any] = {}
    for v in range(values):
        group = data.setdefault(f"s{v // 1000}", {}).setdefault(f"g{v // 50 % 20}", {})
        group[f"k{v % 50}"] = v if v % 2 == 0 else f"value-{v}"
    data["s0"]["g0"]["k1"] = changed
    return data


def write(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data))


class Threads:
    """A validator condition that records the thread each candidate is validated in, and can
    be told to hold a build (``hold()``) until ``release()``."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.entered = threading.Event()
        self.left = threading.Event()
        self._gate: threading.Event | None = None

    def __call__(self, value: Any) -> bool:
        self.seen.append(threading.get_ident())
        gate = self._gate
        if gate is not None:
            self.entered.set()
            gate.wait(30)  # generous: the test releases it
            self.left.set()
        return True

    def hold(self) -> None:
        self._gate = threading.Event()
        self.entered.clear()
        self.left.clear()

    def release(self) -> None:
        assert self._gate is not None
        self._gate.set()
        self._gate = None

    async def wait_entered(self) -> None:
        await anyio.to_thread.run_sync(self.entered.wait, 30)


class Ticker:
    """The loop's longest gap between 1 ms sleeps, shown in failure messages only."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self) -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __str__(self) -> str:
        return f"the loop's longest gap was {self.longest * 1e3:.1f} ms"


@asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker.run)
        yield ticker
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------- which thread builds


@pytest.mark.slow
async def test_a_big_file_is_built_off_the_loop_at_open_and_at_refresh(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(path, document(BIG))
    threads = Threads()
    loop = threading.get_ident()
    validators = [Validator("s0.g0.k1", condition=threads)]
    async with ticking() as ticker:
        source = File(path, watch=False)
        async with load(source, mode="manual", validators=validators) as config:
            assert threads.seen and threads.seen[-1] != loop, ticker
            assert config["s0.g0.k1"] == "value-1"
            assert len(list(config.snapshot.keys_flat())) > BIG
            write(path, document(BIG, "changed"))
            result = await config.refresh(force=True)
            assert result.error is None and result.keys == {"s0.g0.k1"}, result
            assert config["s0.g0.k1"] == "changed"
            assert config.snapshot.version == 2
            assert len(threads.seen) == 2 and threads.seen[-1] != loop, ticker


async def test_a_small_file_is_built_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(path, document(SMALL))
    threads = Threads()
    loop = threading.get_ident()
    validators = [Validator("s0.g0.k1", condition=threads)]
    async with load(File(path, watch=False), mode="manual", validators=validators) as config:
        write(path, document(SMALL, "changed"))
        result = await config.refresh(force=True)
        assert result.keys == {"s0.g0.k1"} and config["s0.g0.k1"] == "changed"
    assert threads.seen == [loop, loop]


@pytest.mark.slow
async def test_a_small_change_over_a_big_snapshot_is_built_off_the_loop(tmp_path: Path) -> None:
    """The build copies and compares the whole snapshot it replaces, whatever changed."""
    big, small = tmp_path / "big.json", tmp_path / "small.json"
    write(big, document(BIG))
    write(small, {"x": 1})
    threads = Threads()
    validators = [Validator("x", condition=threads)]
    sources = File(big, watch=False), File(small, watch=False)
    async with load(*sources, mode="manual", validators=validators) as config:
        write(small, {"x": 2})
        result = await config.refresh(force=True)
        assert result.keys == {"x"} and config["x"] == 2
    assert threading.get_ident() not in threads.seen


def test_the_estimate_counts_up_to_the_threshold_only() -> None:
    assert not _values_reach([document(SMALL)], OFF_LOOP_VALUES)
    assert _values_reach([document(OFF_LOOP_VALUES)], OFF_LOOP_VALUES)
    assert _values_reach([{"a": list(range(OFF_LOOP_VALUES))}], OFF_LOOP_VALUES)
    # several payloads add up
    half = document(OFF_LOOP_VALUES // 2)
    assert not _values_reach([half], OFF_LOOP_VALUES)
    assert _values_reach([half, document(OFF_LOOP_VALUES // 2)], OFF_LOOP_VALUES)
    # a chain deeper than any stack, and a huge flat mapping, are answered without walking
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100_000):
        node["a"] = node = {}
    assert _values_reach([deep], OFF_LOOP_VALUES)
    assert _values_reach([dict.fromkeys(range(10**6), 0)], OFF_LOOP_VALUES)
    assert not _values_reach([{"s": "x" * 10**6}], OFF_LOOP_VALUES)


# ---------------------------------------------------------------- errors, big and small


async def _refresh_error(path: Path, values: int, bad: Mapping[str, Any]) -> list[Any]:
    """Open ``values`` good values, refresh to ``bad`` twice: what each refresh and the
    statistics say (an unchanged bad candidate is reported once)."""
    write(path, document(values))
    errors: list[Exception] = []
    validators = [Validator("s0.g0.k0", lte=10**9)]
    async with load(
        File(path, watch=False),
        mode="manual",
        validators=validators,
        on_refresh_error=errors.append,
    ) as config:
        write(path, bad)
        first = await config.refresh(force=True)
        second = await config.refresh(force=True)
        stats = config.statistics()
        assert config["s0.g0.k1"] == "value-1"  # the good snapshot still serves
    return [
        type(first.error),
        str(first.error),
        type(second.error),
        str(second.error),
        stats.errors,
        stats.engine_errors,
        [str(e) for e in errors],
    ]


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["validator", "spelled twice", "empty key"])
async def test_a_big_rejection_is_reported_as_a_small_one(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "config.json"
    outcomes = []
    for values in (SMALL, BIG):
        bad = document(values)
        if problem == "validator":
            bad["s0"]["g0"]["k0"] = 10**10
        elif problem == "spelled twice":
            bad["s0.g0.k0"] = 1
        else:
            bad["s1"] = {"": 1}
        outcomes.append(await _refresh_error(path, values, bad))
    small, big = outcomes
    assert big == small
    kind = ValidationError if problem == "validator" else ParseError
    assert small[0] is kind and small[4] == 1 and small[5] == 0 and len(small[6]) == 1
    assert str(path) in small[1] or problem == "validator", small[1]


@pytest.mark.slow
async def test_a_big_document_rejected_at_open_is_reported_as_a_small_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    messages = []
    for values in (SMALL, BIG):
        bad = document(values)
        bad["s0"]["g0"]["k0"] = 10**10
        write(path, bad)
        validators = [Validator("s0.g0.k0", lte=10**9)]
        with pytest.raises(InitialValidationError) as caught:
            async with load(File(path, watch=False), mode="manual", validators=validators):
                pass
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "s0.g0.k0" in messages[0]


class _Broken(Mapping[str, Any]):
    """``size`` keys whose values cannot be read: a bug in a source's data, not a rejection."""

    def __init__(self, size: int) -> None:
        self._size = size

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("a bug reading " + key)

    def __iter__(self) -> Iterator[str]:
        return (f"k{i}" for i in range(self._size))

    def __len__(self) -> int:
        return self._size


class _Switch(Source):
    """Good data until ``broken`` is set, then a ``_Broken`` mapping of ``size`` keys."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.broken = False
        self._version = 0

    @property
    def name(self) -> str:
        return "switch"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        self._version += 1
        if self.broken:
            return Payload(_Broken(self.size), self._version)
        return Payload({"a": 1}, self._version)


@pytest.mark.parametrize("size", [SMALL, BIG])
async def test_a_bug_in_a_big_build_is_an_engine_error_as_in_a_small_one(size: int) -> None:
    source = _Switch(size)
    async with load(source, mode="manual") as config:
        source.broken = True
        error = (await config.refresh(force=True)).error
        assert isinstance(error, ConfigError) and str(error) == "refresh crashed: RuntimeError"
        assert isinstance(error.__cause__, RuntimeError)
        assert config.statistics().engine_errors == 1
        assert config["a"] == 1
    source = _Switch(size)
    source.broken = True
    with pytest.raises(InitialLoadError, match="building the configuration failed: RuntimeError"):
        async with load(source, mode="manual"):
            pass


# ---------------------------------------------------------------- closing, ordering


@pytest.mark.slow
async def test_aclose_during_a_big_build_waits_for_it_and_swaps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(path, document(BIG))
    threads = Threads()
    validators = [Validator("s0.g0.k1", condition=threads)]
    events: list[ChangeEvent] = []
    config = await load(
        File(path, watch=False), mode="manual", validators=validators, on_change=events.append
    )
    refreshed: list[BaseException] = []
    closed = anyio.Event()

    async def refresh() -> None:
        try:
            await config.refresh(force=True)
        except ClosedError as exc:
            refreshed.append(exc)

    async def close() -> None:
        await config.aclose()
        closed.set()

    async with anyio.create_task_group() as tg:
        write(path, document(BIG, "changed"))
        threads.hold()
        tg.start_soon(refresh)
        try:
            await threads.wait_entered()  # the candidate is being built, in its thread
            assert config["s0.g0.k1"] == "value-1"  # readers read the old snapshot meanwhile
            tg.start_soon(close)
            await anyio.wait_all_tasks_blocked()
            assert not closed.is_set()  # aclose waits for the build
        finally:
            threads.release()
        with anyio.fail_after(30):  # generous: the build takes milliseconds
            await closed.wait()
    assert threads.left.is_set()  # the build's thread had finished when aclose returned
    assert len(refreshed) == 1
    assert config.statistics().version == 1 and events == []
    await anyio.sleep(0.05)  # nothing left to swap it in later
    assert config.statistics().version == 1 and events == []


@pytest.mark.slow
async def test_two_big_refreshes_back_to_back_end_on_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write(path, document(BIG))
    threads = Threads()
    validators = [Validator("s0.g0.k1", condition=threads)]
    events: list[ChangeEvent] = []
    source = File(path, watch=False)
    async with load(source, mode="manual", validators=validators) as config:
        async with config.changes() as stream:
            results = []

            async def refresh() -> None:
                results.append(await config.refresh(force=True))

            async with anyio.create_task_group() as tg:
                write(path, document(BIG, "first"))
                threads.hold()
                tg.start_soon(refresh)
                try:
                    await threads.wait_entered()  # the first is being built
                    write(path, document(BIG, "second"))
                    tg.start_soon(refresh)  # a forced refresh: a new fetch, queued behind
                    await anyio.wait_all_tasks_blocked()
                    assert config["s0.g0.k1"] == "value-1"
                finally:
                    threads.release()
            for _ in range(2):
                with anyio.fail_after(30):
                    events.append(await anext(stream))
        assert config["s0.g0.k1"] == "second"
        assert config.snapshot.version == 3
        assert [r.snapshot.version for r in results if r.snapshot is not None] == [2, 3]
        assert [e.new["s0.g0.k1"] for e in events] == ["first", "second"]
        assert threading.get_ident() not in threads.seen


def test_costly_is_false_for_small_updates_over_a_small_snapshot() -> None:
    """The cheap rule: a snapshot of 10,000 keys or more is enough; else updates counted up to
    the threshold, a smaller snapshot's keys a quarter each."""
    from aioconfig._load import pipeline

    source = _Switch(SMALL)
    built: Pipeline = pipeline([source])
    small = {0: Payload(document(SMALL), 1)}
    assert not built.costly(small, None)
    assert built.costly({0: Payload(document(BIG), 1)}, None)
    candidate = built.candidate({0: Payload(document(OFF_LOOP_VALUES), 1)}, None)
    assert candidate.snapshot is not None
    assert built.costly(small, candidate.snapshot)  # over a snapshot of 10,000 values and more
    smaller = built.candidate({0: Payload(document(OFF_LOOP_VALUES // 2), 1)}, None).snapshot
    assert smaller is not None and not built.costly(small, smaller)


# ---------------------------------------------------------------- the cache of a big snapshot


@pytest.mark.parametrize(("values", "on_loop"), [(SMALL, True), (BIG, False)])
async def test_a_big_snapshot_is_encoded_and_restored_off_the_loop(
    tmp_path: Path, values: int, on_loop: bool
) -> None:
    # The profile hook sees the calls of the thread it is set in, the loop's, only.
    seen: set[str] = set()
    watched = {_cache.encode.__code__: "encode", _cache.decode.__code__: "decode"}

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code in watched:
            seen.add(watched[frame.f_code])

    path = tmp_path / "settings.json"
    write(path, document(values))
    cache = FileCache(tmp_path / "cache.json")
    sys.setprofile(profile)
    try:
        async with load(File(path), mode="manual", cache=cache) as config:
            await wait_until((tmp_path / "cache.json").exists)
            assert config["s0.g0.k1"] == "value-1"
        path.write_text("{broken")
        async with load(File(path), mode="manual", cache=cache, max_init_wait=0.1) as config:
            assert config.snapshot.from_cache and config["s0.g0.k1"] == "value-1"
            assert config.history("s0.g0.k1")[0].version == 1
    finally:
        sys.setprofile(None)
    assert seen == ({"encode", "decode"} if on_loop else set())


async def test_history_of_a_big_first_snapshot_says_version_one_then_follows_changes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    write(path, document(BIG))
    async with load(File(path), mode="manual") as config:
        assert config.history("s0.g0.k1")[0].version == 1
        write(path, document(BIG, changed="value-2"))
        await config.refresh(force=True)
        assert config.history("s0.g0.k1")[0].version == 2
        assert config.history("s1.g0.k0")[0].version == 1  # unchanged since the first
        assert config.history("nowhere") == []
