"""Memory over many refreshes: 10,000 changed refreshes of a ~100-key config must not grow.

Each step is ``source.set(<one value changed>)`` then ``await config.refresh(force=True)`` on a
MutableSource (mode="manual"). tracemalloc starts after a warm-up of WARMUP refreshes; memory
is read after ``gc.collect()`` at each checkpoint, and live objects are counted with
``gc.get_objects()``. The second scenario keeps one subscriber that never reads its events
(``config.changes(max_buffer=16)``): its buffer must stay bounded too.
Run: ``python benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from _common import machine, nested_config, table

from aioconfig import ChangeEvent, Snapshot, load
from aioconfig.testing import MutableSource

REFRESHES = 10_000
CHECKPOINTS = (1_000, REFRESHES)
WARMUP = 100


@dataclass
class Checkpoint:
    refreshes: int
    current_kib: float
    peak_kib: float
    snapshots: int
    events: int


def live(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


async def scenario(subscriber: bool) -> tuple[list[Checkpoint], float, int]:
    data: dict[str, Any] = nested_config(10, 10)
    source = MutableSource(data)
    checkpoints: list[Checkpoint] = []
    async with AsyncExitStack() as stack:
        config = await stack.enter_async_context(load(source, mode="manual"))
        if subscriber:
            await stack.enter_async_context(config.changes(max_buffer=16))
        version = config.version

        async def step(i: int) -> None:
            data["s3"]["k4"] = i
            source.set(data)
            result = await config.refresh(force=True)
            if not result.changed or config["s3.k4"] != i:
                raise SystemExit(f"refresh {i} did not apply: {result!r}")

        for i in range(WARMUP):
            await step(-1 - i)
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        for i in range(1, REFRESHES + 1):
            await step(i)
            if i in CHECKPOINTS:
                gc.collect()
                current, peak = tracemalloc.get_traced_memory()
                counts = live(Snapshot), live(ChangeEvent)
                checkpoints.append(Checkpoint(i, current / 1024, peak / 1024, *counts))
                # Counting made a list of every object: keep it out of the next peak.
                tracemalloc.reset_peak()
        elapsed = time.perf_counter() - start
        tracemalloc.stop()
        swaps = config.version - version
    return checkpoints, elapsed, swaps


def main() -> None:
    rows = []
    growth: list[float] = []
    for subscriber in (False, True):
        checkpoints, elapsed, swaps = asyncio.run(scenario(subscriber))
        label = "one idle subscriber (never reads)" if subscriber else "no subscriber"
        first = checkpoints[0]
        for point in checkpoints:
            rows.append(
                (
                    label,
                    f"{point.refreshes:,}",
                    f"{point.current_kib:,.1f}",
                    f"{point.current_kib - first.current_kib:+,.1f}",
                    f"{point.peak_kib:,.1f}",
                    point.snapshots,
                    point.events,
                )
            )
        growth.append(checkpoints[-1].current_kib - first.current_kib)
        if swaps != REFRESHES + WARMUP:
            raise SystemExit(f"expected {REFRESHES + WARMUP} swaps, got {swaps}")
        print(f"{label}: {REFRESHES:,} refreshes (traced) in {elapsed:.1f} s", flush=True)
    print(
        f"\n### Memory over {REFRESHES:,} changed refreshes (~100-key config, "
        f"tracemalloc after gc.collect())\n"
    )
    print(
        table(
            [
                "scenario",
                "refreshes",
                "traced KiB",
                "vs 1,000",
                "peak KiB since last row",
                "live Snapshots",
                "live ChangeEvents",
            ],
            rows,
        )
    )
    grown = ", ".join(f"{g:+.1f} KiB" for g in growth)
    print(f"\nGrowth from 1,000 to {REFRESHES:,} refreshes (per scenario): {grown}")
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
