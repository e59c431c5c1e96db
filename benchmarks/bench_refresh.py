"""Refresh of a 10,000-key JSON file (100 sections x 100 keys), against parsing it yourself.

Every row is timed call by call (``time.perf_counter_ns``) over ROUNDS calls after a warm-up;
the table shows the median and the best, in ms. For the changed-file row, rewriting the file
happens before the timer starts; only ``await config.refresh(force=True)`` is timed, and every
refresh is checked to have swapped in exactly the rewritten value.
Run: ``python benchmarks/bench_refresh.py``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from _common import machine, nested_config, per_call_ns, table

from aioconfig import load
from aioconfig._merge import build
from aioconfig.sources import File
from aioconfig.sources._formats import parse

SECTIONS = KEYS = 100
ROUNDS = 200
AGED_NS = 10_000_000_000  # older than File's 2 s "racy timestamp" window


def deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline merge: mappings merged key by key into fresh dicts, anything else replaced."""
    for key, value in layer.items():
        if isinstance(value, Mapping):
            target = into.get(key)
            if not isinstance(target, dict):
                target = into[key] = {}
            deep_merge(target, value)
        else:
            into[key] = value
    return into


def write(path: str, data: dict[str, Any], *, age_ns: int = 0) -> None:
    with open(path, "wb") as file:
        file.write(orjson.dumps(data))
    if age_ns:
        then = time.time_ns() - age_ns
        os.utime(path, ns=(then, then))


Row = tuple[str, float, float]


def sync_rows(path: str, data: dict[str, Any]) -> list[Row]:
    with open(path, "rb") as file:
        raw = file.read()
    parsed = orjson.loads(raw)
    tree, flat, _ = build([parsed])
    changed = orjson.loads(raw)
    changed["s0"]["k0"] = -1

    def read_loads_merge() -> object:
        with open(path, "rb") as f:
            return deep_merge({}, orjson.loads(f.read()))

    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "baseline: orjson.loads(bytes) + deep merge into a fresh dict",
            lambda: deep_merge({}, orjson.loads(raw)),
        ),
        ("baseline + reading the file", read_loads_merge),
        ("orjson.loads(bytes) alone", lambda: orjson.loads(raw)),
        ("_formats.parse(bytes, 'json') (decode + orjson)", lambda: parse(raw, "json", path)),
        ("_merge.build([data]) alone, from scratch", lambda: build([parsed])),
        (
            "_merge.build([data], previous) alone (1 key differs)",
            lambda: build([changed], (tree, flat)),
        ),
    ]
    rows: list[Row] = []
    for name, fn in cases:
        median, best = per_call_ns(fn, rounds=ROUNDS)
        rows.append((name, median, best))
    return rows


async def refresh_rows(path: str, data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    write(path, data, age_ns=AGED_NS)
    async with load(File(path, watch=False), mode="manual") as config:
        assert len(list(config.snapshot.keys_flat())) == SECTIONS * KEYS + SECTIONS

        async def timed(
            name: str, before: Callable[[int], None], check: Callable[[Any], None]
        ) -> None:
            samples: list[int] = []
            for i in range(-3, ROUNDS):  # three warm-up rounds
                before(i)
                start = time.perf_counter_ns()
                result = await config.refresh(force=True)
                elapsed = time.perf_counter_ns() - start
                if result.error is not None:
                    raise SystemExit(f"{name}: refresh failed: {result.error!r}")
                check(result)
                if i >= 0:
                    samples.append(elapsed)
            samples.sort()
            rows.append((name, float(samples[len(samples) // 2]), float(samples[0])))

        def unchanged(result: Any) -> None:
            if result.changed:
                raise SystemExit("an unchanged file was reported as changed")

        def nothing(i: int) -> None:
            pass

        # (a) unchanged and old enough to trust its stat: one stat, no read
        await timed("refresh, unchanged file (stat only)", nothing, unchanged)

        # (a') unchanged but just written: racy, so read + hash every time, still no parse
        write(path, data)
        await config.refresh(force=True)
        await timed("refresh, unchanged file, written < 2 s ago (read + hash)", nothing, unchanged)

        # (b) one value rewritten before each refresh, same file size each time
        expected: list[str] = []

        def rewrite(i: int) -> None:
            value = f"changed-{i + 10:06d}"
            data["s42"]["k7"] = value
            expected.append(value)
            write(path, data)

        def picked_up(result: Any) -> None:
            if not result.changed or result.keys != {"s42.k7"}:
                raise SystemExit(f"change not picked up: {result!r}")
            if config["s42.k7"] != expected[-1]:
                raise SystemExit("the new value is not served")

        await timed("refresh, changed file (1 value rewritten)", rewrite, picked_up)
    return rows


def main() -> None:
    data = nested_config(SECTIONS, KEYS)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "config.json")
        write(path, data)
        size = os.path.getsize(path)
        rows = sync_rows(path, data) + asyncio.run(refresh_rows(path, data))
    base = rows[0][1]
    print(
        f"### Refresh of a {SECTIONS * KEYS:,}-key JSON file ({size / 1024:.0f} KiB), "
        f"per call, {ROUNDS} rounds\n"
    )
    print(
        table(
            ["operation", "median ms", "best ms", "median vs baseline"],
            [(n, f"{m / 1e6:.3f}", f"{b / 1e6:.3f}", f"{m / base:.2f}x") for n, m, b in rows],
        )
    )
    changed, changed_best = rows[-1][1], rows[-1][2]
    verdict = "met" if changed <= 2 * base else "MISSED"
    print(
        f"\nTarget: changed-file refresh within 2x of orjson.loads + merge: {changed / base:.2f}x "
        f"median to median, {changed_best / rows[0][2]:.2f}x best to best ({verdict})"
    )
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
