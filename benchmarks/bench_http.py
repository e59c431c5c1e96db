"""Http: what a refresh costs over loopback, and how a fleet of 1,000 clients spreads its polls.

(1) Refresh of a 10,000-key JSON document (100 sections x 100 keys, as in bench_refresh.py)
served by a local aiohttp server running in a process of its own. Each row is timed call
by call (``time.perf_counter_ns``), ROUNDS calls after a warm-up; median and best, in ms. Setting
up the server's next answer happens before the timer starts. Every refresh is checked: a 304 is
unchanged, a changed body swaps in exactly the value that was rewritten. Baselines: a bare
aiohttp GET of the same document plus ``orjson.loads`` (and plus the incremental build of a
snapshot, which any swap needs), and a bare conditional GET answered 304.

(2) A fleet: CLIENTS Configs (``load(Http(url), refresh_interval=30, clock=clock, seed=i)``),
each with its own Http source and aiohttp session, polling one local server for 60 simulated
seconds. They share one fake clock that wakes sleepers one deadline at a time, setting the time to
that deadline and letting the woken clients finish (every poll loop asleep again) before the next
one; the server stamps each request with that clock (so the 100 ms steps are exact deadlines,
not rounded ones). Requests are counted per 100 ms bucket (and per 1 s and 5 s); the table shows
the peak bucket over the mean bucket, over all 60 s and without the start-up second.

(3) The same schedule without the network, for longer: poll times computed with the engine's own
``jittered`` (one ``Random(seed=i)`` per client, as the fleet uses), to show how long ±10 %
jitter takes to spread a fleet that started at once. Its first row is (2)'s second fleet.
Run: ``python benchmarks/bench_http.py`` (about 15 s).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import multiprocessing
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson
from _common import machine, nested_config, table
from aiohttp import web

from aioconfig import Config, RefreshResult, load
from aioconfig._merge import build
from aioconfig._schedule import jittered
from aioconfig.sources._http import Http

SECTIONS = KEYS = 100
ROUNDS = 200
CLIENTS = 1000
INTERVAL = 30.0
SIMULATED = 60.0
BUCKETS = (0.1, 1.0, 5.0)


# ---------------------------------------------------------------- (1) refresh cost


class Document:
    """What the server answers: the document, with or without an ETag; it counts its answers.

    ``POST /set?value=V&etag=E`` rewrites ``s42.k7`` to V and the ETag to E (empty: none).
    """

    def __init__(self) -> None:
        self.data = nested_config(SECTIONS, KEYS)
        self.body = orjson.dumps(self.data)
        self.etag: str | None = '"0"'
        self.answers = {200: 0, 304: 0}

    async def get(self, request: web.Request) -> web.Response:
        if self.etag is not None and request.headers.get("If-None-Match") == self.etag:
            self.answers[304] += 1
            return web.Response(status=304, headers={"ETag": self.etag})
        self.answers[200] += 1
        headers = {"Content-Type": "application/json"}
        if self.etag is not None:
            headers["ETag"] = self.etag
        return web.Response(body=self.body, headers=headers)

    async def set(self, request: web.Request) -> web.Response:
        value = request.query.get("value")
        if value is not None:
            self.data["s42"]["k7"] = value
            self.body = orjson.dumps(self.data)
        self.etag = request.query.get("etag") or None
        return web.json_response(self.answers)


def serve_forever(port_out: Connection) -> None:
    """The server process: its own interpreter, so the client's timings are the client's."""

    async def run() -> None:
        doc = Document()
        app = web.Application()
        app.router.add_get("/config.json", doc.get)
        app.router.add_post("/set", doc.set)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port_out.send((runner.addresses[0][1], len(doc.body)))
        await asyncio.Event().wait()

    asyncio.run(run())


Row = tuple[str, float, float]


async def timed(
    name: str, call: Callable[[], Awaitable[Any]], before: Callable[[int], Awaitable[None] | None]
) -> Row:
    samples: list[int] = []
    for i in range(-3, ROUNDS):  # three warm-up rounds
        prepared = before(i)
        if prepared is not None:
            await prepared
        start = time.perf_counter_ns()
        await call()
        elapsed = time.perf_counter_ns() - start
        if i >= 0:
            samples.append(elapsed)
    return name, float(statistics.median(samples)), float(min(samples))


async def refresh_rows(base: str) -> list[Row]:
    url = base + "/config.json"
    rows: list[Row] = []
    async with aiohttp.ClientSession() as control:

        async def set_document(value: str | None = None, etag: str = "") -> dict[str, int]:
            query = {"etag": etag} if value is None else {"etag": etag, "value": value}
            async with control.post(base + "/set", params=query) as response:
                answers: dict[str, int] = await response.json()
                return answers

        def nothing(i: int) -> Awaitable[None] | None:
            return None

        # baselines: aiohttp alone, one keep-alive session
        await set_document(etag='"0"')
        async with aiohttp.ClientSession() as session:

            async def get_and_parse() -> None:
                async with session.get(url) as response:
                    assert response.status == 200
                    orjson.loads(await response.read())

            async def get_304() -> None:
                async with session.get(url, headers={"If-None-Match": '"0"'}) as response:
                    assert response.status == 304
                    await response.read()

            rows.append(
                await timed("baseline: aiohttp GET (200) + orjson.loads", get_and_parse, nothing)
            )
            async with session.get(url) as response:
                tree, flat, _ = build([orjson.loads(await response.read())])

            async def get_parse_and_build() -> None:
                async with session.get(url) as response:
                    assert response.status == 200
                    build([orjson.loads(await response.read())], (tree, flat))

            rows.append(
                await timed(
                    "baseline + _merge.build([data], previous) (what a swap needs)",
                    get_parse_and_build,
                    nothing,
                )
            )
            rows.append(
                await timed("baseline: aiohttp conditional GET answered 304", get_304, nothing)
            )

        async with load(Http(url), mode="manual") as config:
            assert len(list(config.snapshot.keys_flat())) == SECTIONS * KEYS + SECTIONS
            results: list[RefreshResult] = []

            async def refresh() -> None:
                results.append(await config.refresh(force=True))

            def unchanged(r: RefreshResult) -> None:
                if r.error is not None or r.changed:
                    raise SystemExit(f"unexpected: {r!r}")

            # 304: the ETag matches
            before = await set_document(etag='"0"')
            rows.append(await timed("refresh, answered 304 Not Modified", refresh, nothing))
            after = await set_document(etag='"0"')
            if after["304"] - before["304"] != ROUNDS + 3:
                raise SystemExit(f"expected {ROUNDS + 3} answers 304: {before} -> {after}")

            # 200 with the very same body and no ETag: read and hashed, not parsed
            await set_document(etag="")
            await config.refresh(force=True)
            before = await set_document(etag="")
            rows.append(
                await timed(
                    "refresh, 200 with the same body (no ETag): read + hash", refresh, nothing
                )
            )
            after = await set_document(etag="")
            if after["200"] - before["200"] != ROUNDS + 3:
                raise SystemExit(f"expected {ROUNDS + 3} answers 200: {before} -> {after}")
            for r in results:
                unchanged(r)
            results.clear()

            # 200 with one value changed: read, parse, merge, swap
            expected: list[str] = []

            async def rewrite(i: int) -> None:
                value = f"changed-{i + 10:06d}"
                expected.append(value)
                await set_document(value, etag=f'"{i + 10}"')

            async def refresh_changed() -> None:
                r = await config.refresh(force=True)
                if not r.changed or r.keys != {"s42.k7"} or config["s42.k7"] != expected[-1]:
                    raise SystemExit(f"change not picked up: {r!r}")

            rows.append(
                await timed(
                    "refresh, 200 with 1 value changed: parse + merge + swap",
                    refresh_changed,
                    rewrite,
                )
            )
    return rows


# ---------------------------------------------------------------- (2) fleet


class FleetClock:
    """One clock for many Configs: wakes the sleepers of one deadline at a time, in order."""

    def __init__(self) -> None:
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Event]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        event = asyncio.Event()
        heapq.heappush(self._sleepers, (self._now + max(seconds, 0.0), next(self._order), event))
        await event.wait()

    @property
    def sleepers(self) -> int:
        return len(self._sleepers)

    def next_deadline(self) -> float:
        return self._sleepers[0][0] if self._sleepers else math.inf

    def wake_next(self) -> None:
        """Set the time to the earliest deadline and wake everyone due then."""
        deadline = self._sleepers[0][0]
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] == deadline:
            heapq.heappop(self._sleepers)[2].set()

    def set(self, now: float) -> None:
        self._now = max(self._now, now)


async def settle(clock: FleetClock, expected_sleepers: int) -> None:
    """Run until every client's poll loop sleeps again (its request answered and handled)."""
    spins = 0
    while clock.sleepers < expected_sleepers:
        spins += 1
        await asyncio.sleep(0 if spins < 50 else 0.0005)
        if spins > 200_000:
            raise SystemExit("the fleet did not settle")


async def opened(config: Config) -> Config:
    return await config


async def fleet(jitter: float, staggered: bool) -> list[float]:
    """Run CLIENTS Configs for SIMULATED seconds; returns each request's time at the server."""
    clock = FleetClock()
    stamps: list[float] = []
    body = orjson.dumps({"feature": {"enabled": True}, "limit": 10})

    async def handle(request: web.Request) -> web.Response:
        stamps.append(clock.now())
        if request.headers.get("If-None-Match") == '"1"':
            return web.Response(status=304, headers={"ETag": '"1"'})
        return web.Response(body=body, headers={"ETag": '"1"', "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_get("/config.json", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/config.json"
    # A staggered fleet comes up one client at a time over one interval, as after a rolling
    # deploy; otherwise all start at t = 0, as after a full restart.
    starts = [INTERVAL * i / CLIENTS if staggered else 0.0 for i in range(CLIENTS)]
    configs: list[Config] = []
    try:
        pending = list(reversed(starts))
        while True:
            next_start = pending[-1] if pending else math.inf
            due = clock.next_deadline()
            if min(next_start, due) >= SIMULATED:
                break
            if next_start <= due:
                clock.set(next_start)
                batch: list[Config] = []
                while pending and pending[-1] == next_start:
                    pending.pop()
                    batch.append(
                        load(
                            Http(url),
                            refresh_interval=INTERVAL,
                            jitter=jitter,
                            clock=clock,
                            seed=len(configs) + len(batch),
                        )
                    )
                configs.extend(await asyncio.gather(*(opened(c) for c in batch)))
            else:
                clock.wake_next()
            await settle(clock, len(configs))
        for config in configs:
            if config.statistics().errors:
                raise SystemExit(f"a client failed: {config.statistics().last_error!r}")
    finally:
        await asyncio.gather(*(config.aclose() for config in configs))
        await runner.cleanup()
    return [s for s in stamps if s < SIMULATED]


def peak_to_mean(
    stamps: list[float], width: float, start: float = 0.0, end: float = SIMULATED
) -> float:
    """The busiest ``width``-second bucket of [start, end) over the average bucket."""
    n = round((end - start) / width)
    buckets = [0] * n
    inside = [s for s in stamps if start <= s < end]
    for stamp in inside:
        buckets[min(int((stamp - start) / width + 1e-9), n - 1)] += 1
    return max(buckets) / (len(inside) / n)


def schedule(jitter: float, end: float, *, splay: bool = False) -> list[float]:
    """Poll times up to ``end`` of CLIENTS clients all opened at t = 0, by the engine's own
    ``jittered`` (one Random(seed=i) per client, as in the fleet above); no network.

    ``splay``: the first poll is instead uniform over one interval (a proposal; see the notes).
    """
    stamps = []
    for i in range(CLIENTS):
        rng = random.Random(i)
        t = rng.uniform(0, INTERVAL) if splay else jittered(INTERVAL, jitter, rng)
        while t < end:
            stamps.append(t)
            t += jittered(INTERVAL, jitter, rng)
    return stamps


def random_phases(seed: int = 0) -> list[float]:
    """The ideal of a long-running jittered fleet: independent, uniformly random poll phases."""
    rng = random.Random(seed)
    stamps = []
    for _ in range(CLIENTS):
        t = rng.uniform(0, INTERVAL)
        while t < SIMULATED:
            stamps.append(t)
            t += INTERVAL
    return stamps


async def fleet_rows() -> list[tuple[str, list[float], float]]:
    rows = []
    for name, jitter, staggered in (
        ("all start at t=0, jitter=0", 0.0, False),
        ("all start at t=0, jitter=0.1", 0.1, False),
        ("staggered start over 30 s, jitter=0", 0.0, True),
        ("staggered start over 30 s, jitter=0.1", 0.1, True),
    ):
        start = time.perf_counter()
        stamps = await fleet(jitter, staggered)
        rows.append((name, stamps, time.perf_counter() - start))
    rows.append(("reference: uniformly random phases (no aioconfig)", random_phases(), 0.0))
    return rows


# ---------------------------------------------------------------- main


def main() -> None:
    parent, child = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=serve_forever, args=(child,), daemon=True
    )
    server.start()
    try:
        port, size = parent.recv()
        rows = asyncio.run(refresh_rows(f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.join()
    base = rows[0][1]
    print(
        f"### Http refresh of a {SECTIONS * KEYS:,}-key JSON document "
        f"({size / 1024:.0f} KiB) over loopback, per call, {ROUNDS} rounds\n"
    )
    print(
        table(
            ["operation", "median ms", "best ms", "median vs baseline"],
            [(n, f"{m / 1e6:.3f}", f"{b / 1e6:.3f}", f"{m / base:.2f}x") for n, m, b in rows],
        )
    )

    results = asyncio.run(fleet_rows())
    print(
        f"\n### Fleet: {CLIENTS:,} clients polling one server every {INTERVAL:g} s, "
        f"{SIMULATED:g} simulated seconds (peak bucket / mean bucket)\n"
    )
    headers = [
        "fleet",
        "requests",
        "0.1 s buckets, whole run",
        "0.1 s buckets, polls (t >= 1 s)",
        "1 s buckets, polls (t >= 1 s)",
        "wall s",
    ]
    out = []
    for name, stamps, wall in results:
        whole = f"{peak_to_mean(stamps, 0.1):.2f}"
        polls = [f"{peak_to_mean(stamps, w, start=1.0):.2f}" for w in (0.1, 1.0)]
        out.append((name, f"{len(stamps):,}", whole, *polls, f"{wall:.1f}" if wall else "-"))
    print(table(headers, out))

    print(
        f"\n### A fleet that started at once, with and without the first poll spread over an "
        f"interval (schedules simulated: {CLIENTS:,} clients, no network)\n"
    )
    hour = 3600.0
    drifted = schedule(0.1, 6 * hour + SIMULATED)
    splayed = schedule(0.1, SIMULATED, splay=True)
    sim_rows = []
    for label, stamps, begin in (
        ("first poll spread (aioconfig), the minute from t=1 s", splayed, 1.0),
        ("jitter alone (no spread), the minute from t=1 s", drifted, 1.0),
        ("jitter alone (no spread), the minute from t=10 min", drifted, 600.0),
        ("jitter alone (no spread), the minute from t=1 h", drifted, hour),
        ("jitter alone (no spread), the minute from t=6 h", drifted, 6 * hour),
        ("reference: uniformly random phases", random_phases(), 0.0),
    ):
        end = begin + SIMULATED - (1.0 if begin == 1.0 else 0.0)
        ratios = [f"{peak_to_mean(stamps, w, begin, end):.2f}" for w in BUCKETS]
        sim_rows.append((label, *ratios))
    print(table(["window", *(f"peak/mean, {w:g} s buckets" for w in BUCKETS)], sim_rows))
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
