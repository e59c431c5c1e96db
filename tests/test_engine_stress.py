"""The refresh engine under random load: pushes, polls, forced and plain refreshes, cancelled
callers, failing and stalled sources, all at once, checked against the engine's promises.

Each seed replays the same operations (the interleaving may still differ a little: cache
writes run in threads, subscribers nap in real time). The promises (``aioconfig/_engine.py``):
callbacks run one at a time and see every version in order; a subscriber reads versions in
order; a forced refresh answers from a fetch that began after the call and returns once its
callbacks have run; once the sources settle, the snapshot and the cache hold their newest data.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import orjson
import pytest

from aioconfig import (
    ChangeEvent,
    ChangeStream,
    Config,
    FileCache,
    LoadError,
    RefreshResult,
    SourceUnavailable,
    load,
)
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio

SEEDS = (7, 1999, 31337)
STEPS = 1000  # operations per seed: about a second each
INTERVAL = 1.0  # refresh_interval, in fake seconds
NAMES = ("alpha", "beta", "gamma")  # two pushed, one polled; distinct top-level keys
LEAVES = ("count", "label")  # what a change of a source changes (its "source" stays)


def data(name: str, count: int) -> dict[str, Any]:
    """What source ``name`` holds after its ``count``-th change."""
    return {name: {"source": name, "count": count, "label": f"{name}-{count}"}}


async def checkpoints(count: int) -> None:
    for _ in range(count):
        await anyio.lowlevel.checkpoint()


class Witness:
    """What the callbacks saw. A broken promise is written down, not asserted: the engine
    logs and swallows whatever a callback raises."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.config: Config | None = None
        self.inside = 0  # callbacks running now: never more than one
        self.version = 1  # the newest version on_change has seen (1: the first load)
        self.changes: list[int] = []
        self.successes = 0
        self.errors: list[Exception] = []
        self.problems: list[str] = []

    def enter(self, what: str) -> None:
        self.inside += 1
        if self.inside > 1:
            self.problems.append(f"{what} ran while another callback was running")

    async def leave(self) -> None:
        # Yield while still inside, so a callback run alongside would be caught.
        await checkpoints(self.rng.randrange(3))
        self.inside -= 1

    async def on_change(self, event: ChangeEvent) -> None:
        self.enter("on_change")
        try:
            old, new = event.old.version, event.new.version
            if old != self.version or new != old + 1:
                self.problems.append(f"on_change {old}->{new} after version {self.version}")
            counts = {n: (event.old[f"{n}.count"], event.new[f"{n}.count"]) for n in NAMES}
            if any(after < before for before, after in counts.values()):
                # An older payload applied over a newer one from the same source.
                self.problems.append(f"on_change {old}->{new} went back: {counts}")
            changed = {f"{n}.{leaf}" for n, (a, b) in counts.items() if a != b for leaf in LEAVES}
            if event.keys != changed:
                self.problems.append(f"on_change {old}->{new}: keys {sorted(event.keys)}")
            self.version = new
            self.changes.append(new)
            await anyio.lowlevel.checkpoint()
            if self.config is not None and self.rng.random() < 0.1:
                # Calling back in: waits for the result, never for its own callbacks.
                result = await self.config.refresh(force=self.rng.random() < 0.5)
                if result.snapshot is None or result.snapshot.version < new:
                    self.problems.append(f"a refresh inside on_change({new}) went back")
        finally:
            await self.leave()

    async def on_refresh_success(self, result: RefreshResult) -> None:
        self.enter("on_refresh_success")
        try:
            self.successes += 1
            version = None if result.snapshot is None else result.snapshot.version
            if result.error is not None or version != self.version:
                # Notices run in the applier's order: a success reports the newest version.
                self.problems.append(f"success at version {version} after {self.version}")
        finally:
            await self.leave()

    async def on_refresh_error(self, error: Exception) -> None:
        self.enter("on_refresh_error")
        try:
            self.errors.append(error)
            if not isinstance(error, (SourceUnavailable, LoadError)):
                self.problems.append(f"unexpected refresh error {error!r}")
        finally:
            await self.leave()


async def subscribe(
    config: Config,
    max_buffer: int,
    rng: random.Random,
    seen: list[ChangeEvent],
    *,
    task_status: anyio.abc.TaskStatus[int],
) -> None:
    """Read change events until the Config closes, now and then too slowly (they fold)."""
    async with config.changes(max_buffer=max_buffer) as events:
        task_status.started(config.version)
        await read(events, rng, seen)


async def read(events: ChangeStream, rng: random.Random, seen: list[ChangeEvent]) -> None:
    async for event in events:
        seen.append(event)
        if rng.random() < 0.1:
            await anyio.sleep(0.02)  # long enough for a few versions to pile up and fold
        else:
            await checkpoints(rng.choice((0, 1, 5)))


def check_stream(seen: list[ChangeEvent], start: int, final: int) -> None:
    """Changes come in order and, folded or not, span every version exactly once; an error
    event reports the version serving when it happened."""
    version = start
    for event in seen:
        if event.error is not None:
            assert event.old is event.new
            assert event.new.version == version, event
        else:
            assert event.old.version == version < event.new.version, event
            version = event.new.version
    assert version == final


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
async def test_the_engine_keeps_its_promises_under_random_load(
    seed: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(30):  # a deadlock fails the test instead of hanging it
        await stress(seed, tmp_path / "cache.json")
    # Failures are warnings; an error logged would be an engine crash or a callback raising.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def stress(seed: int, cache_path: Path) -> None:
    rng = random.Random(seed)
    witness = Witness(random.Random(seed + 1))
    clock = FakeClock()
    counts = dict.fromkeys(NAMES, 0)
    sources = {
        name: MutableSource(data(name, 0), name=name, push=name != "gamma") for name in NAMES
    }
    failing: dict[str, int] = {}  # source -> the step it heals at
    gates: dict[str, tuple[anyio.Event, int]] = {}  # held loads -> the step they go on at
    config = load(
        *sources.values(),
        refresh_interval=INTERVAL,
        clock=clock,
        seed=seed,
        cache=FileCache(cache_path),
        on_change=witness.on_change,
        on_refresh_success=witness.on_refresh_success,
        on_refresh_error=witness.on_refresh_error,
    )
    witness.config = config
    refreshes: list[RefreshResult] = []
    streams: list[tuple[int, list[ChangeEvent]]] = []

    async def refresh(force: bool) -> None:
        wanted = dict(counts)  # what a forced refresh must see at least
        version = config.version
        result = await config.refresh(force=force)
        refreshes.append(result)
        assert result.snapshot is not None
        assert result.snapshot.version >= version
        if not force:
            return  # when not due, answered at once (callbacks may still be running)
        # Answered once the callbacks up to its result have run, from a fetch that began after
        # the call.
        assert witness.version >= result.snapshot.version
        if result.error is None:
            for name, count in wanted.items():
                assert result.snapshot[f"{name}.count"] >= count, (name, result)

    async def cancelled_refresh(force: bool, after: int) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh, force)
            await checkpoints(after)
            tg.cancel_scope.cancel()

    def heal(step: float) -> None:
        for name, until in list(failing.items()):
            if until <= step:
                sources[name].fail(None)
                del failing[name]
        for name, (gate, until) in list(gates.items()):
            if until <= step:
                sources[name].gate = None
                gate.set()
                del gates[name]

    async with anyio.create_task_group() as readers, config:
        for i, max_buffer in enumerate((1, rng.choice((2, 3, 4)), 1000)):
            seen: list[ChangeEvent] = []
            pace = random.Random(seed + 2 + i)  # its own: the operations must not hang on it
            start = await readers.start(subscribe, config, max_buffer, pace, seen)
            streams.append((start, seen))
        versions = [config.version]
        async with anyio.create_task_group() as tg:
            for step in range(STEPS):
                heal(step)
                name = rng.choice(NAMES)
                roll = rng.random()
                if roll < 0.35:
                    counts[name] += 1
                    sources[name].set(data(name, counts[name]))
                elif roll < 0.50:
                    for _ in range(rng.randint(1, 4)):
                        tg.start_soon(refresh, True)
                elif roll < 0.58:
                    tg.start_soon(refresh, False)
                elif roll < 0.68:
                    tg.start_soon(cancelled_refresh, rng.random() < 0.7, rng.randrange(8))
                elif roll < 0.76:
                    await clock.advance(rng.uniform(0.0, 2 * INTERVAL))
                elif roll < 0.80:
                    if name not in failing:
                        sources[name].fail(SourceUnavailable(name, "down for a while"))
                        failing[name] = step + rng.randint(5, 60)
                elif roll < 0.83:
                    if name not in gates:
                        gate = anyio.Event()
                        sources[name].gate = gate
                        gates[name] = (gate, step + rng.randint(1, 30))
                else:
                    await checkpoints(rng.randrange(12))
                versions.append(config.version)
            heal(float("inf"))  # every source, however long it had left
        assert versions == sorted(versions)

        # Every source healed: one forced refresh sees the newest data of all of them, and
        # the watches that went down reopen within a backoff (never over the interval).
        final = await config.refresh(force=True)
        assert final.error is None
        for _ in range(3):
            await clock.advance(2 * INTERVAL)
        await anyio.wait_all_tasks_blocked()

        expected: dict[str, Any] = {}
        for name in NAMES:
            expected |= data(name, counts[name])
        assert config.snapshot.to_dict() == expected
        version = config.version
        assert witness.problems == []
        assert witness.changes == list(range(2, version + 1))
        assert witness.inside == 0
        assert witness.successes > 0
        assert len(refreshes) > 0
        assert config.statistics().engine_errors == 0
    for start, seen in streams:
        check_stream(seen, start, version)

    entry = orjson.loads(await anyio.Path(cache_path).read_bytes())
    assert (entry["version"], entry["data"]) == (version, expected)
