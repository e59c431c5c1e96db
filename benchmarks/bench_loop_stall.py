"""Event-loop stalls on big documents: how long the loop is held while a big config loads.

For JSON and YAML documents of growing size (SIZES values, nested three levels:
``s<i>.g<j>.k<k>``, 1,000 values a section, 50 a group; ints, strings, floats and booleans in
turn), the script opens ``load(File(path), mode="manual")`` and ``load(Http(url), ...)`` and
then runs ``refresh(force=True)`` after one value changed, while a ticker task sleeps 1 ms in a
loop and records the longest gap between its wake-ups: the longest time the event loop could
not run anything else. The Http server is an aiohttp app in a thread of this process with its
own event loop (on 127.0.0.1, closed at the end), so its work is not on the measured loop.

Reference columns, outside any loop: ``_formats.parse`` alone (the parse the sources run in a
worker thread: File always, Http above 64 KiB), and ``prepare`` + ``_merge.build`` from scratch
(the start of the candidate build, which the engine's applier runs in a worker thread from
10,000 values, on the loop below).

Each open and each refresh is measured ROUNDS times (once for the YAML documents over 10,000
values, whose pure-Python parse takes seconds); the table shows the median wall time and the
longest stall of all the rounds. Every open is checked to hold all the values, every refresh to
have swapped in exactly the changed value. ``max_init_wait`` and Http's ``timeout`` are raised
to 300 s: the defaults (5 s, 10 s) are about as long as a big YAML parse. Http keeps its default
``max_bytes`` (10 MiB; the biggest document here is 7.1 MiB).
Hostile documents (BOMBS): YAML bombs of a few hundred bytes, served by the same Http server
(under 2 KiB, but holding aliases: parsed in a worker thread), each refreshed ROUNDS times over
a good ``a: 1``; the table
shows the median wall time, the longest stall and what the refresh said (it must be refused and
leave ``a == 1``, or, for the largest merge bomb under the limit, be read).
With a cache (CACHED_SIZES, JSON, File): ``load(File(path), mode="manual",
cache=FileCache(...))`` opens and the cache file is written, then one value changes and
``refresh(force=True)`` runs until the cache file is rewritten, then a Config over a broken
file starts from that cache: each the longest stall of ROUNDS rounds (what the notifier's
encoding of a big snapshot and the start-up's decoding of a big entry cost the loop).
Run: ``python benchmarks/bench_loop_stall.py`` (about 2 minutes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import orjson
import yaml
from _common import machine, table
from aiohttp import web

from aioconfig import Config, FileCache, ParseError, load
from aioconfig._layers import prepare
from aioconfig._merge import build
from aioconfig.sources import File
from aioconfig.sources._formats import parse
from aioconfig.sources._http import Http

SIZES = {
    "json": (1_000, 10_000, 50_000, 75_000, 100_000, 250_000, 500_000),
    # PyYAML's safe_load takes about 50 us a value here. 4,000 values: just under the 64 KiB
    # below which Http parses on the loop.
    "yaml": (1_000, 4_000, 10_000, 25_000, 50_000, 100_000),
}
CACHED_SIZES = (10_000, 100_000, 250_000)
ROUNDS = 3
BUDGET_MS = 100.0
TICK = 0.001
CHANGED = "s0.g0.k1"


def document(values: int) -> dict[str, Any]:
    """``values`` leaves, three levels deep: ``{"s0": {"g0": {"k0": 0, "k1": "value-1", ...}}}``."""
    data: dict[str, Any] = {}
    for v in range(values):
        group = data.setdefault(f"s{v // 1000}", {}).setdefault(f"g{v // 50 % 20}", {})
        kind = v % 4
        group[f"k{v % 50}"] = (
            v if kind == 0 else f"value-{v}" if kind == 1 else v * 0.5 if kind == 2 else v % 8 == 3
        )
    return data


def dumps(data: dict[str, Any], format: str) -> bytes:
    if format == "json":
        return orjson.dumps(data)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # only the writing: fast
    return yaml.dump(data, Dumper=dumper, sort_keys=False).encode()


def merge_bomb(levels: int, fan: int) -> bytes:
    """Each level merges the one before ``fan`` times: PyYAML copies ``fan ** levels`` entries."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for n in range(1, levels):
        refs = ", ".join([f"*m{n - 1}"] * fan)
        lines.append(f"m{n}: &m{n} {{<<: [{refs}], c{n}: {n}}}")
    return ("\n".join(lines) + "\na: 2\n").encode()


def alias_bomb(levels: int) -> bytes:
    """The "billion laughs": each level lists the one before nine times."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return ("\n".join(lines) + "\na: 2\n").encode()


# name, document, whether it is read (within the limits) rather than refused
BOMBS: tuple[tuple[str, bytes, bool], ...] = (
    ("alias bomb, 10 levels of 9", alias_bomb(10), False),
    ("merge bomb, 11 levels of 4 (the audit's)", merge_bomb(11, 4), False),
    ("merge bomb, 12 levels of 4", merge_bomb(12, 4), False),
    ("merge bomb, 15 levels of 2 (within the limit)", merge_bomb(15, 2), True),
)


# ---------------------------------------------------------------- the ticker


class Ticker:
    """Sleeps TICK in a loop; ``longest`` is the longest gap between two wake-ups, in s."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        last = time.perf_counter()
        task_status.started()
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def begin(self) -> float:
        """Let the loop settle, forget the gaps so far; the start time."""
        await asyncio.sleep(5 * TICK)
        self.longest = 0.0
        return time.perf_counter()

    async def end(self, start: float) -> tuple[float, float]:
        """(wall ms since ``start``, longest gap ms since ``begin()``)."""
        wall = time.perf_counter() - start
        await asyncio.sleep(5 * TICK)  # the ticker wakes after the call: that gap counts too
        return wall * 1e3, self.longest * 1e3


# ---------------------------------------------------------------- the server


class Server:
    """An aiohttp app on 127.0.0.1 in a thread of its own, serving ``body`` at /config."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, format: str) -> str:
        return f"http://127.0.0.1:{self.port}/config.{format}"

    async def _get(self, request: web.Request) -> web.Response:
        return web.Response(body=self.body, content_type="application/octet-stream")

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/config.{format}", self._get)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


# ---------------------------------------------------------------- measuring


Measured = dict[str, float]


def reference(raw: bytes, format: str, rounds: int) -> Measured:
    """Parse alone, and prepare + merge from scratch alone (best of ``rounds``), in ms."""
    parses, builds = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        data = parse(raw, format, "bench")  # type: ignore[arg-type]
        parses.append(time.perf_counter() - start)
        start = time.perf_counter()
        build([prepare(data, "bench").data])
        builds.append(time.perf_counter() - start)
    return {"parse": min(parses) * 1e3, "build": min(builds) * 1e3}


async def measure_path(
    ticker: Ticker,
    open_config: Callable[[], Config],
    change: Callable[[int], None],
    values: int,
    rounds: int,
) -> Measured:
    """Wall ms and longest stall ms of ``rounds`` opens and of ``rounds`` refreshes."""
    samples: dict[str, list[float]] = {k: [] for k in ("open", "open_stall", "ref", "ref_stall")}
    for i in range(rounds):
        change(i)  # the document as the open will find it
        start = await ticker.begin()
        async with open_config() as config:
            wall, stall = await ticker.end(start)
            if len(list(config.snapshot.keys_flat())) < values or config["s0.g0.k0"] != 0:
                raise SystemExit("the open did not load the whole document")
            samples["open"].append(wall)
            samples["open_stall"].append(stall)
            change(i + 1000)
            start = await ticker.begin()
            result = await config.refresh(force=True)
            wall, stall = await ticker.end(start)
            if result.error is not None or result.keys != {CHANGED}:
                raise SystemExit(f"the refresh did not swap in the change: {result!r}")
            if config[CHANGED] != f"changed-{i + 1000:06d}":
                raise SystemExit("the refresh did not serve the changed value")
            samples["ref"].append(wall)
            samples["ref_stall"].append(stall)
    # Wall times: the median of the rounds; stalls: the longest of them (what "stays under
    # 100 ms" has to mean).
    return {k: (max if k.endswith("stall") else statistics.median)(v) for k, v in samples.items()}


async def measure(
    ticker: Ticker, format: str, values: int, server: Server, directory: str
) -> Measured:
    data = document(values)
    raw = dumps(data, format)
    rounds = ROUNDS if format == "json" or values <= 10_000 else 1
    result = {"bytes": float(len(raw)), **reference(raw, format, rounds)}
    path = os.path.join(directory, f"config.{format}")

    def rewrite(i: int) -> None:
        data["s0"]["g0"]["k1"] = f"changed-{i:06d}"
        with open(path, "wb") as file:
            file.write(dumps(data, format))

    def serve(i: int) -> None:
        data["s0"]["g0"]["k1"] = f"changed-{i:06d}"
        server.body = dumps(data, format)

    def from_file() -> Config:
        return load(File(path, watch=False), mode="manual", max_init_wait=300)

    def over_http() -> Config:
        source = Http(server.url(format), format=format, timeout=300)  # type: ignore[arg-type]
        return load(source, mode="manual", max_init_wait=300)

    for name, opener, change in (("file", from_file, rewrite), ("http", over_http, serve)):
        measured = await measure_path(ticker, opener, change, values, rounds)
        result.update({f"{name}_{k}": v for k, v in measured.items()})
    return result


async def measure_bomb(ticker: Ticker, server: Server, raw: bytes, read: bool) -> Measured:
    """Median wall ms and longest stall ms of ROUNDS refreshes from ``a: 1`` to ``raw``."""
    walls, stalls = [], []
    for _ in range(ROUNDS):
        server.body = b"a: 1\n"
        source = Http(server.url("yaml"), format="yaml", timeout=300)
        async with load(source, mode="manual", max_init_wait=300) as config:
            server.body = raw
            start = await ticker.begin()
            result = await config.refresh(force=True)
            wall, stall = await ticker.end(start)
            if read and (result.error is not None or config["a"] != 2):
                raise SystemExit(f"the document within the limits was not read: {result!r}")
            if not read and (not isinstance(result.error, ParseError) or config["a"] != 1):
                raise SystemExit(f"the bomb was not refused: {result!r}")
            walls.append(wall)
            stalls.append(stall)
    return {"wall": statistics.median(walls), "stall": max(stalls), "bytes": float(len(raw))}


async def measure_cached(ticker: Ticker, values: int, directory: str) -> Measured:
    """Longest stalls of ROUNDS opens, changed refreshes and starts from the cache, each until
    the cache file is written (or, for the start, read); with ``cache=FileCache``."""
    data = document(values)
    path = os.path.join(directory, "cached.json")
    cached = os.path.join(directory, "cache.json")
    samples: dict[str, list[float]] = {"open": [], "refresh": [], "restore": []}

    def stamp() -> int:  # the cache file's mtime, 0 while there is none
        return os.stat(cached).st_mtime_ns if os.path.exists(cached) else 0

    def write(raw: bytes) -> None:
        with open(path, "wb") as file:
            file.write(raw)

    async def written(before: int) -> None:
        # The file system has no event to wait on: poll it (a stat costs microseconds).
        while stamp() == before:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    for i in range(ROUNDS):
        if stamp():
            os.remove(cached)
        data["s0"]["g0"]["k1"] = f"open-{i}"
        write(dumps(data, "json"))
        start = await ticker.begin()
        async with load(File(path, watch=False), mode="manual", cache=FileCache(cached)) as config:
            await written(0)
            samples["open"].append((await ticker.end(start))[1])
            before = stamp()
            data["s0"]["g0"]["k1"] = f"changed-{i}"
            write(dumps(data, "json"))
            start = await ticker.begin()
            if (await config.refresh(force=True)).keys != {CHANGED}:
                raise SystemExit("the refresh did not swap in the change")
            await written(before)
            samples["refresh"].append((await ticker.end(start))[1])
        write(b"{broken")
        start = await ticker.begin()
        cache = FileCache(cached)
        async with load(File(path, watch=False), mode="manual", cache=cache) as config:
            samples["restore"].append((await ticker.end(start))[1])
            if not config.snapshot.from_cache or config[CHANGED] != f"changed-{i}":
                raise SystemExit("the Config did not start from the cache")
    return {k: max(v) for k, v in samples.items()}


async def run() -> tuple[
    float,
    dict[str, list[tuple[int, Measured]]],
    list[tuple[str, Measured, str]],
    list[tuple[int, Measured]],
]:
    results: dict[str, list[tuple[int, Measured]]] = {}
    bombs: list[tuple[str, Measured, str]] = []
    cached: list[tuple[int, Measured]] = []
    ticker = Ticker()
    with Server() as server, tempfile.TemporaryDirectory() as directory:
        async with anyio.create_task_group() as tg:
            await tg.start(ticker.run)  # one ticker; every Config opens and closes inside
            start = await ticker.begin()
            await asyncio.sleep(0.2)
            _, idle = await ticker.end(start)  # the ticker alone: the floor of every stall
            for format, sizes in SIZES.items():
                results[format] = [
                    (n, await measure(ticker, format, n, server, directory)) for n in sizes
                ]
            for name, raw, read in BOMBS:
                outcome = "read" if read else "refused"
                bombs.append((name, await measure_bomb(ticker, server, raw, read), outcome))
            for n in CACHED_SIZES:
                cached.append((n, await measure_cached(ticker, n, directory)))
            tg.cancel_scope.cancel()
    return idle, results, bombs, cached


def main() -> None:
    started = time.perf_counter()
    # Starting from the cache warns, as it should: not in the tables' way.
    logging.getLogger("aioconfig").setLevel(logging.ERROR)
    idle, results, bombs, cached = asyncio.run(run())
    print(
        "### Longest event-loop stall while a document loads (ms; a 1 ms ticker's longest gap; "
        f"ticker alone: {idle:.1f} ms)\n"
    )
    headers = [
        "values",
        "KiB",
        "parse ms",
        "build ms",
        "File open ms",
        "open stall ms",
        "File refresh ms",
        "refresh stall ms",
        "Http open ms",
        "open stall ms",
        "Http refresh ms",
        "refresh stall ms",
    ]
    keys = (
        "file_open",
        "file_open_stall",
        "file_ref",
        "file_ref_stall",
        "http_open",
        "http_open_stall",
        "http_ref",
        "http_ref_stall",
    )
    for format, rows in results.items():
        print(f"#### {format.upper()}\n")
        print(
            table(
                headers,
                [
                    (
                        f"{n:,}",
                        f"{m['bytes'] / 1024:,.0f}",
                        f"{m['parse']:,.1f}",
                        f"{m['build']:,.1f}",
                        *(f"{m[k]:,.1f}" for k in keys),
                    )
                    for n, m in rows
                ],
            )
        )
        print()
    print(
        "parse ms: `_formats.parse` alone, outside the loop; build ms: `prepare` + `_merge.build` "
        "from scratch alone. Opens and refreshes: median wall time, longest stall of the rounds "
        f"({ROUNDS}; 1 for YAML over 10,000 values).\n"
    )
    for format, rows in results.items():
        parts = []
        for path in ("file_open", "file_ref", "http_open", "http_ref"):
            largest = None  # the largest size that stays under, with every smaller one
            for n, m in rows:
                if m[f"{path}_stall"] >= BUDGET_MS:
                    break
                largest = n, m
            what = path.replace("_ref", " refresh").replace("_open", " open")
            what = what.replace("file", "File").replace("http", "Http")
            if largest is None:
                parts.append(f"{what}: none")
            else:
                n, m = largest
                parts.append(f"{what}: {n:,} values ({m['bytes'] / 1024:,.0f} KiB)")
        print(
            f"Largest {format.upper()} whose longest stall stays under {BUDGET_MS:.0f} ms "
            "(and every smaller one's): " + "; ".join(parts)
        )
    print("\n#### Hostile YAML over Http (a refresh from `a: 1`)\n")
    print(
        table(
            ["document", "bytes", "Http refresh ms", "refresh stall ms", "outcome"],
            [
                (name, f"{m['bytes']:,.0f}", f"{m['wall']:,.1f}", f"{m['stall']:,.1f}", outcome)
                for name, m, outcome in bombs
            ],
        )
    )
    print("\n#### JSON through File with `cache=FileCache(...)`: longest stall, ms\n")
    print(
        table(
            ["values", "open + cache written", "refresh + cache rewritten", "start from cache"],
            [
                (f"{n:,}", f"{m['open']:,.1f}", f"{m['refresh']:,.1f}", f"{m['restore']:,.1f}")
                for n, m in cached
            ],
        )
    )
    print(f"\nMachine: {machine()}  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
