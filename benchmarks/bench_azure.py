"""Azure App Configuration: what a sentinel check costs against a full reload, and push against
polling.

(1) A store of N keys (1,000 and 10,000; 100 per page, the service's page size) on the loopback
server of tests/azure_server.py (same process, HMAC checked), read by ``AzureAppConfig`` with
Microsoft's async client. Rows: ``load(token)`` with the sentinel unchanged (one conditional
GET answered 304), with ``refresh_enabled=True`` and no sentinel (every page's ETag sent back,
a 304 per page), and a full reload (``load(None)``: every page listed, processed, made into a
payload). Requests per call are counted at the server. Each call timed on its own
(``perf_counter_ns``), ROUNDS calls after a warm-up; median and best, in ms.

(2) Push against polling: the time from a change in the store (a write of a key and the
sentinel) until the Config serves it. Polling: ``refresh_interval=1`` (the provider's minimum),
changes made at random moments; push: the Event Grid route of
``aioconfig.integrations.starlette.azure_push_route``, called as Event Grid would call it right
after the write. CHANGES changes each; median and max, in ms.

Run: ``python benchmarks/bench_azure.py`` (about 30 s).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from azure_server import Store, azure_server
from starlette.applications import Starlette

from aioconfig.azure import WatchKey, load
from aioconfig.integrations.starlette import azure_push_route
from aioconfig.sources import AzureAppConfig

ROUNDS = 30
CHANGES = 10


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) / 1e6:8.2f} {min(values) / 1e6:8.2f}"


async def timed(source: AzureAppConfig, token: Any, store: Store) -> tuple[list[float], int]:
    times = []
    store.requests.clear()
    for _ in range(ROUNDS):
        began = time.perf_counter_ns()
        await source.load(token)
        times.append(time.perf_counter_ns() - began)
    return times, len(store.requests) // ROUNDS


async def check_costs() -> None:
    print("(1) one check, ms: median, best; requests per call")
    print(f"{'keys':>6} {'case':<36} {'median':>8} {'best':>8} {'requests':>9}")
    for size in (1_000, 10_000):
        store = Store(page_size=100)
        for i in range(size):
            store.set(f"app:s{i // 100}:k{i % 100}", str(i))
        store.set("sentinel", "1")
        async with azure_server(store) as server:
            cs = store.connection_string(server)
            sentinel = AzureAppConfig(connection_string=cs, refresh_on=[WatchKey("sentinel")])
            watch_all = AzureAppConfig(connection_string=cs, refresh_enabled=True)
            try:
                first = await sentinel.load(None)
                await sentinel.load(None)  # warm-up
                rows = [
                    ("sentinel unchanged (304)", *await timed(sentinel, first.token, store)),
                ]
                every = await watch_all.load(None)
                rows.append(
                    (
                        "watch-all unchanged (a 304 per page)",
                        *await timed(watch_all, every.token, store),
                    )
                )
                rows.append(("full reload", *await timed(sentinel, None, store)))
            finally:
                await sentinel.aclose()
                await watch_all.aclose()
            for case, times, requests in rows:
                print(f"{size:>6} {case:<36} {ms(times)} {requests:>9}")


async def asgi_post(app: Any, path: str, body: Any) -> None:
    payload = json.dumps(body).encode()
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    await app(scope, receive, send)


async def propagation() -> None:
    print("\n(2) change in the store -> served, ms: median, max")
    rng = random.Random(14)
    store = Store()
    for i in range(100):
        store.set(f"app:k{i}", "0")
    store.set("sentinel", "0")
    async with azure_server(store) as server:
        cs = store.connection_string(server)
        for mode in ("polling, refresh_interval=1", "push (Event Grid route)"):
            push = mode.startswith("push")
            async with (
                load(
                    connection_string=cs,
                    refresh_on=[WatchKey("sentinel")],
                    refresh_interval=3600 if push else 1,
                ) as config,
                config.changes("app:k1") as events,
            ):
                app = Starlette(routes=[azure_push_route(config, "/events")])
                stream = aiter(events)
                delays = []
                for n in range(1, CHANGES + 1):
                    await asyncio.sleep(rng.uniform(0, 1))
                    began = time.perf_counter()
                    store.set("app:k1", str(n))
                    store.set("sentinel", str(n))
                    if push:
                        event = {
                            "eventType": "Microsoft.AppConfiguration.KeyValueModified",
                            "subject": f"{cs.split(';')[0][9:]}/kv/sentinel",
                            "data": {"key": "sentinel", "syncToken": store.sync_token},
                        }
                        await asgi_post(app, "/events", [event])
                    await anext(stream)  # the ChangeEvent: the new snapshot serves
                    assert config["app:k1"] == str(n)
                    delays.append((time.perf_counter() - began) * 1000)
                print(
                    f"{mode:<30} {statistics.median(delays):8.2f} {max(delays):8.2f}"
                    f"   ({CHANGES} changes)"
                )


async def main() -> None:
    await check_costs()
    await propagation()


if __name__ == "__main__":
    asyncio.run(main())
