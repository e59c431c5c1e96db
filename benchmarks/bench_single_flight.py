"""Single flight: 10,000 concurrent ``refresh(force=True)`` calls cost one fetch, not 10,000.

Each scenario runs on a fresh Config (mode="manual") and is repeated ROUNDS times; the wall time
is the median of the rounds, from the first call to the last result. Fetches are counted by the
source itself (``MutableSource.loads``) and by the engine (``statistics().fetches``).
Run: ``python benchmarks/bench_single_flight.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from _common import machine, nested_config, table

from aioconfig import Config, load
from aioconfig.sources import File
from aioconfig.testing import MutableSource

CALLERS = 10_000
ROUNDS = 5


@dataclass
class Outcome:
    callers: int
    fetches: list[int]  # per round, as the engine counts them
    source_loads: list[int | None]  # per round, as the source counts them (None: no counter)
    changed: list[int]  # per round: callers whose result says the snapshot changed
    wall_ms: list[float]


async def one_round(
    config: Config, callers: int, loads: Callable[[], int | None], before: Callable[[], None]
) -> tuple[int, int | None, int, float]:
    before()
    fetches0, loads0 = config.statistics().fetches, loads()
    start = time.perf_counter_ns()
    if callers == 1:
        results = [await config.refresh(force=True)]
    else:
        results = await asyncio.gather(*(config.refresh(force=True) for _ in range(callers)))
    wall = (time.perf_counter_ns() - start) / 1e6
    errors = [r.error for r in results if r.error is not None]
    if errors:
        raise SystemExit(f"refresh failed: {errors[0]!r}")
    loads1 = loads()
    delta = None if loads1 is None or loads0 is None else loads1 - loads0
    changed = sum(r.changed for r in results)
    return config.statistics().fetches - fetches0, delta, changed, wall


async def scenario(
    open_config: Callable[[], Config],
    callers: int,
    loads: Callable[[], int | None],
    before: Callable[[], None] = lambda: None,
    gated: MutableSource | None = None,
) -> Outcome:
    outcome = Outcome(callers, [], [], [], [])
    for _ in range(ROUNDS):
        async with open_config() as config:
            if gated is None:
                fetches, delta, changed, wall = await one_round(config, callers, loads, before)
            else:
                # Hold the fetch until every caller is waiting, then let it through.
                gate = gated.gate = anyio.Event()
                task = asyncio.ensure_future(one_round(config, callers, loads, before))
                await anyio.wait_all_tasks_blocked()
                gate.set()
                fetches, delta, changed, wall = await task
                gated.gate = None
        outcome.fetches.append(fetches)
        outcome.source_loads.append(delta)
        outcome.changed.append(changed)
        outcome.wall_ms.append(wall)
    return outcome


async def measure(data: dict[str, Any], path: str) -> list[tuple[str, Outcome]]:
    """``path``: the same data as a JSON file."""
    source = MutableSource(data)
    version = 0

    def change() -> None:
        nonlocal version
        version += 1
        source.set({**data, "version": version})

    def mutable() -> Config:
        return load(source, mode="manual")

    def file() -> Config:
        return load(File(path, watch=False), mode="manual")

    def loads() -> int:
        return source.loads

    def no_counter() -> None:
        return None

    results: list[tuple[str, Outcome]] = []
    for label, callers in (("1 call", 1), (f"{CALLERS:,} concurrent", CALLERS)):
        results.append(
            (f"MutableSource, unchanged, {label}", await scenario(mutable, callers, loads))
        )
        results.append(
            (f"MutableSource, changed, {label}", await scenario(mutable, callers, loads, change))
        )
        results.append(
            (f"File (JSON, 100 keys), {label}", await scenario(file, callers, no_counter))
        )
    results.append(
        (
            f"MutableSource, changed, fetch held until all {CALLERS:,} wait",
            await scenario(mutable, CALLERS, loads, change, gated=source),
        )
    )
    results.append((f"baseline: {CALLERS:,} tasks awaiting one Event", await baseline(CALLERS)))
    return results


async def baseline(callers: int) -> Outcome:
    """What asyncio alone costs: gather ``callers`` tasks that all wait for one event."""
    outcome = Outcome(callers, [], [], [], [])
    for _ in range(ROUNDS):
        event = anyio.Event()

        async def waiter(event: anyio.Event = event) -> None:
            await event.wait()

        async def setter(event: anyio.Event = event) -> None:
            await anyio.lowlevel.checkpoint()
            event.set()

        start = time.perf_counter_ns()
        await asyncio.gather(*(waiter() for _ in range(callers)), setter())
        outcome.wall_ms.append((time.perf_counter_ns() - start) / 1e6)
        outcome.fetches.append(0)
        outcome.source_loads.append(None)
        outcome.changed.append(0)
    return outcome


def spread(values: list[int | None]) -> str:
    if any(v is None for v in values):
        return "-"
    low, high = min(values), max(values)  # type: ignore[type-var]
    return str(low) if low == high else f"{low}-{high}"


def main() -> None:
    data = nested_config(10, 10)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "config.json")
        with open(path, "w") as file:
            json.dump(data, file)
        results = asyncio.run(measure(data, path))
    rows = []
    for name, o in results:
        wall = statistics.median(o.wall_ms)
        held = "held" in name  # the wall time includes waiting for every caller to block
        rows.append(
            (
                name,
                spread(list(o.fetches)) if not name.startswith("baseline") else "-",
                spread(o.source_loads),
                spread(list(o.changed)),
                "n/a" if held else f"{wall:.2f}",
                "n/a" if held else f"{min(o.wall_ms):.2f}",
                "n/a" if held else f"{wall * 1e6 / o.callers:,.0f}",
            )
        )
    print(f"### Single flight: concurrent `refresh(force=True)` (median of {ROUNDS} rounds)\n")
    print(
        table(
            [
                "scenario",
                "fetches (engine)",
                "source.loads delta",
                "results with changed=True",
                "wall ms (median)",
                "wall ms (best)",
                "ns per caller (median)",
            ],
            rows,
        )
    )
    many = [o for name, o in results if name.startswith("MutableSource") and o.callers > 1]
    ok = all(set(o.fetches) == {1} and set(o.source_loads) == {1} for o in many)
    print(f"\nTarget: one fetch for {CALLERS:,} concurrent callers: {'met' if ok else 'MISSED'}")
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
