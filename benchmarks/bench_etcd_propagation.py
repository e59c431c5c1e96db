"""Propagation: an etcd put -> the ChangeEvent reaching a subscriber of ``load(Etcd(...))``.

A real single-member etcd (``tests/etcd_server.py``, data dir in a temporary directory, on
loopback) and one process holding both the writer and the reader, so both ends read one clock.
CHANGES puts, one at a time: the clock starts just before the writer sends ``/v3/kv/put`` and
stops when the subscriber task, blocked in ``async for event in config.changes()``, receives the
event for that value. Each event is checked to carry exactly that key and value. The put's own
round trip (the writer's wait for etcd's answer: raft commit and WAL fsync) is shown on its own.
The polling row is not measured: a change lands uniformly within a poll interval, so a poller
sees it half an interval later on average (15 s at the 30 s default of Azure App Configuration's
provider), and a whole interval later at worst.
Run: ``python benchmarks/bench_etcd_propagation.py`` (needs ``etcd``: apt-get install etcd-server).
"""

from __future__ import annotations

import asyncio
import sys
import time

import anyio
from _common import machine, table

from aioconfig import ChangeStream, load
from aioconfig.sources._etcd import Etcd
from tests.etcd_server import EtcdClient, EtcdCluster, etcd_binary

CHANGES = 1_000
WARMUP = 50
TARGET_P99_MS = 25.0
POLL_INTERVAL_S = 30.0
KEY = "/bench/value"


def quantile(samples: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted ``samples``."""
    index = min(len(samples) - 1, max(0, round(q * len(samples) + 0.5) - 1))
    return samples[index]


async def measure() -> tuple[list[float], list[float]]:
    """(put -> event, put round trip) in ms, one pair per change."""
    propagation: list[float] = []
    round_trips: list[float] = []
    received: dict[int, float] = {}
    arrived = anyio.Event()

    async def subscriber(events: ChangeStream) -> None:
        nonlocal arrived
        async for event in events:
            now = time.perf_counter()
            if event.error is not None:
                raise SystemExit(f"error event: {event.error}")
            if event.keys != {"value"}:
                raise SystemExit(f"unexpected keys {sorted(event.keys)}")
            received[event.new["value"]] = now
            arrived.set()

    async with (
        EtcdCluster() as etcd,
        EtcdClient(etcd.endpoints) as writer,
    ):
        await writer.put(KEY, "-1")
        source = Etcd(etcd.endpoints, prefix="/bench/", progress_notify_interval=1.0)
        async with load(source) as config, config.changes(max_buffer=4) as events:
            async with anyio.create_task_group() as tg:
                tg.start_soon(subscriber, events)
                for i in range(-WARMUP, CHANGES):
                    arrived = anyio.Event()
                    start = time.perf_counter()
                    await writer.put(KEY, str(i))
                    answered = time.perf_counter()
                    with anyio.fail_after(5):
                        while i not in received:
                            await arrived.wait()
                            arrived = anyio.Event()
                    if i >= 0:
                        propagation.append((received[i] - start) * 1000)
                        round_trips.append((answered - start) * 1000)
                tg.cancel_scope.cancel()
            if config["value"] != CHANGES - 1:
                raise SystemExit("the last value is not served")
    return sorted(propagation), sorted(round_trips)


def main() -> int:
    if etcd_binary() is None:
        print("etcd is not installed: apt-get install etcd-server", file=sys.stderr)
        return 1
    propagation, round_trips = asyncio.run(measure())

    def row(name: str, samples: list[float]) -> tuple[str, str, str, str, str]:
        return (
            name,
            f"{quantile(samples, 0.5):.2f}",
            f"{quantile(samples, 0.99):.2f}",
            f"{samples[-1]:.2f}",
            f"{sum(samples) / len(samples):.2f}",
        )

    poll_ms = POLL_INTERVAL_S * 1000
    print(f"### etcd put -> ChangeEvent at a subscriber, {CHANGES:,} changes, loopback\n")
    print(
        table(
            ["path", "p50 ms", "p99 ms", "max ms", "mean ms"],
            [
                row("etcd put, round trip (writer side, for reference)", round_trips),
                row("put -> ChangeEvent delivered (Etcd watch)", propagation),
                (
                    f"polling every {POLL_INTERVAL_S:g} s (expected: half the interval)",
                    f"{poll_ms / 2:,.0f}",
                    f"{poll_ms * 0.99:,.0f}",
                    f"{poll_ms:,.0f}",
                    f"{poll_ms / 2:,.0f}",
                ),
            ],
        )
    )
    p99 = quantile(propagation, 0.99)
    verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
    p50 = quantile(propagation, 0.5)
    print(
        f"\nTarget: p99 <= {TARGET_P99_MS:g} ms: {p99:.2f} ms ({verdict}). "
        f"The median change reaches subscribers {poll_ms / 2 / p50:,.0f}x sooner than with "
        f"a {POLL_INTERVAL_S:g} s poll."
    )
    print(f"\nMachine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
