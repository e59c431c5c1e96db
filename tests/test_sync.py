"""aioconfig.sync: a Config hosted on a thread, for synchronous code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
import pytest

import aioconfig.sync
from aioconfig import ChangeEvent, ClosedError, InitialLoadError, RefreshResult
from aioconfig.sources import File, NotModified, Payload, Source
from aioconfig.sync import SyncConfig
from aioconfig.testing import FakeClock, MutableSource

ROOT = Path(__file__).resolve().parent.parent
_R = TypeVar("_R")


def host_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aioconfig sync"]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(host_threads())
    yield
    deadline = time.monotonic() + 5
    while set(host_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(host_threads()) - before


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text('greeting = "hello"\n[db]\nport = 5432\n')
    return path


class Held(Source):
    """A source whose loads wait for a ``threading.Event`` the test sets; it counts loads."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.version = 1
        self.loads = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    @property
    def name(self) -> str:
        return "held"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        self.loads += 1
        self.started.set()
        await anyio.to_thread.run_sync(self.release.wait)
        if token == self.version:
            return NotModified(token)
        return Payload(dict(self.data), self.version)

    def set(self, data: dict[str, Any]) -> None:
        self.data, self.version = data, self.version + 1


def test_reads_refresh_and_close(settings: Path) -> None:
    with aioconfig.sync.load(File(settings, watch=False), mode="manual") as config:
        assert isinstance(config, SyncConfig)
        assert config["greeting"] == config.get("greeting") == config.snapshot["greeting"]
        assert "db.port" in config and config.version == 1 and sorted(config) == ["db", "greeting"]
        assert config.get("missing", 7) == 7 and config.statistics().state == "opened"
        settings.write_text('greeting = "hi"\n[db]\nport = 5432\n')
        result = config.refresh(force=True, timeout=5)
        assert isinstance(result, RefreshResult) and result.keys == {"greeting"}
        assert config["greeting"] == "hi" and config.version == 2
        assert "greeting" in config.explain("greeting")
    with pytest.raises(ClosedError):
        config["greeting"]
    with pytest.raises(ClosedError):
        config.refresh()


@dataclass(frozen=True)
class Greeting:
    greeting: str
    db: dict[str, int]


def in_thread(fn: Callable[[], _R]) -> _R:
    """``fn()`` on a new ordinary thread (no event loop); its exception, if any, re-raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    [(ok, value)] = outcome
    if not ok:
        raise value
    return cast(_R, value)


def every_read(config: SyncConfig) -> dict[str, object]:
    """Every read a SyncConfig has, as comparable values (ages checked, then left out)."""
    status = config.status()
    assert all(0 <= (s.answered or 0) < 60 for s in status.sources)
    history = config.history("greeting")
    return {
        "status": (status.state, status.version, [s.name for s in status.sources]),
        "statistics": config.statistics(),
        "item": config["greeting"],
        "get": config.get("db.port"),
        "contains": "db.port" in config,
        "keys": sorted(config),
        "len": len(config),
        "snapshot": config.snapshot.version,
        "version": config.version,
        "sources": [source.name for source in config.sources],
        "environment": config.environment,
        "bind": config.bind(Greeting),
        "history": (history[0].source, history[0].value),
        "explain": "greeting" in config.explain("greeting"),
        "flags": config.flags.index(),
        "get_value": config.get_value("no-such-flag", 3),
        "details": config.get_value_details("no-such-flag", 3).value,
        "flag_keys": config.get_all_keys(),
        "flag_values": config.get_all_values(),
        "repr": repr(config),
    }


def test_every_read_works_on_any_thread_and_status_after_close(settings: Path) -> None:
    # status() read the event loop's clock, which only the loop's own thread can ask for.
    config = aioconfig.sync.load(File(settings, watch=False), mode="manual")
    try:
        on_main = every_read(config)
        assert on_main == in_thread(lambda: every_read(config))
        assert on_main["status"] == ("opened", 1, [str(settings)])
    finally:
        config.close()
    for read in (config.status, lambda: in_thread(config.status)):
        status = read()
        assert status.state == "closed" and status.version == 1
        assert status.sources[0].answered is not None and status.sources[0].error is None
    assert config.statistics().state == in_thread(config.statistics).state == "closed"
    with pytest.raises(ClosedError):
        in_thread(lambda: config["greeting"])

    # A clock of the user's own is asked directly, from whichever thread asks.
    clock = FakeClock(100.0)
    with aioconfig.sync.load(File(settings, watch=False), mode="manual", clock=clock) as faked:
        clock._now = 130.0
        assert faked.status().sources[0].answered == 30.0
        assert in_thread(faked.status).sources[0].answered == 30.0


def test_the_first_load_fails_in_the_callers_thread(tmp_path: Path) -> None:
    with pytest.raises(InitialLoadError) as caught:
        aioconfig.sync.load(tmp_path / "missing.toml")
    assert "missing.toml: file not found" in str(caught.value)


def test_options_are_checked_at_the_call(settings: Path) -> None:
    with pytest.raises(TypeError):
        aioconfig.sync.load(settings, refresh_intervall=3)
    with pytest.raises(ValueError):
        aioconfig.sync.load(settings, jitter=2)
    assert not host_threads()


def test_callbacks_run_on_the_host_thread_and_refresh_there_raises() -> None:
    source = MutableSource({"n": 1})
    seen: list[object] = []
    holder: list[SyncConfig] = []

    async def on_change(event: ChangeEvent) -> None:
        seen.append(threading.current_thread().name)
        try:
            holder[0].refresh()
        except RuntimeError as exc:
            seen.append(str(exc))
        seen.append(await holder[0].arefresh())  # the async way works on the host thread

    with aioconfig.sync.load(source, mode="manual", on_change=on_change) as config:
        holder.append(config)
        source.set({"n": 2})
        config.refresh(force=True, timeout=5)
    assert seen[0] == "aioconfig sync"
    assert isinstance(seen[1], str) and "own thread" in seen[1] and "arefresh" in seen[1]
    assert isinstance(seen[2], RefreshResult)


def test_change_iterator_with_timeout() -> None:
    source = MutableSource({"db": {"port": 1}, "other": 1})
    config = aioconfig.sync.load(source, mode="manual")
    with config.changes(keys=["db"], timeout=0.05) as events:
        with pytest.raises(TimeoutError):
            next(events)
        source.set({"db": {"port": 1}, "other": 2})  # filtered out
        config.refresh(force=True)
        source.set({"db": {"port": 2}, "other": 2})
        config.refresh(force=True)
        event = next(events)
        assert event.keys == {"db.port"} and event.new.version == 3
        closer = threading.Timer(0.05, config.close)
        closer.start()
        events.timeout = 5
        assert list(events) == []  # the stream ends when the SyncConfig closes
        closer.join()


@pytest.mark.anyio
async def test_arefresh_from_another_event_loop() -> None:
    source = MutableSource({"n": 1})
    config = await anyio.to_thread.run_sync(lambda: aioconfig.sync.load(source, mode="manual"))
    try:
        source.set({"n": 2})
        result = await config.arefresh(force=True)
        assert result.changed and config["n"] == 2
    finally:
        await anyio.to_thread.run_sync(config.close)


def test_refresh_timeout_leaves_the_flight_to_the_others() -> None:
    source = Held({"n": 1})
    with aioconfig.sync.load(source, mode="manual") as config:
        source.release.clear()
        source.set({"n": 2})
        with pytest.raises(TimeoutError):
            config.refresh(force=True, timeout=0.05)
        source.release.set()
        assert config.refresh(timeout=5).changed  # joins the same flight
        assert config["n"] == 2 and source.loads == 2


def test_close_is_quick_idempotent_and_callable_from_a_callback(settings: Path) -> None:
    closed_in_callback = threading.Event()
    holder: list[SyncConfig] = []

    def on_change(event: ChangeEvent) -> None:
        holder[0].close()  # from the host thread: begins the shutdown, returns
        closed_in_callback.set()

    config = aioconfig.sync.load(File(settings, watch=False), mode="manual", on_change=on_change)
    holder.append(config)
    settings.write_text('greeting = "bye"\n')
    config.refresh(force=True, timeout=5)
    assert closed_in_callback.wait(5)
    started = time.perf_counter()
    config.close()
    config.close()
    assert time.perf_counter() - started < 1.0
    with pytest.raises(ClosedError):
        config.snapshot  # noqa: B018


@pytest.mark.slow
def test_eight_threads_read_whole_snapshots_and_share_one_fetch() -> None:
    source = Held({"a": 0, "b": 0})
    config = aioconfig.sync.load(source, mode="lazy", refresh_interval=0)
    stop = threading.Event()
    problems: list[str] = []

    def read() -> None:
        last = 0
        while not stop.is_set():
            time.sleep(0)  # let the writer have the GIL now and then
            snapshot = config.snapshot
            if snapshot["a"] != snapshot["b"] or snapshot.version < last:
                problems.append(f"torn or stepped back: {snapshot.to_dict()} v{snapshot.version}")
            last = snapshot.version

    def write() -> None:
        for n in range(1, 21):
            source.set({"a": n, "b": n})
            config.refresh(force=True, timeout=5)

    threads = [threading.Thread(target=read) for _ in range(7)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    threads[-1].join(10)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not problems and config["a"] == 20

    # Eight callers of refresh() while one fetch is held: all join that flight.
    source.release.clear()
    source.started.clear()
    source.set({"a": 100, "b": 100})
    loads = source.loads
    arrived = threading.Barrier(9)
    results: list[RefreshResult] = []

    def call() -> None:
        arrived.wait()
        results.append(config.refresh(timeout=10))

    callers = [threading.Thread(target=call) for _ in range(8)]
    for thread in callers:
        thread.start()
    arrived.wait()
    assert source.started.wait(5)
    time.sleep(0.2)  # the other seven reach the flight while its fetch is held
    source.release.set()
    for thread in callers:
        thread.join(10)
    assert source.loads == loads + 1
    assert len(results) == 8 and len({id(result) for result in results}) == 1
    assert results[0].changed and config["a"] == 100
    config.close()


def _fork() -> int:
    with warnings.catch_warnings():  # 3.12+: "this process is multi-threaded" (it is: see below)
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_after_fork_the_child_refreshes_by_itself_and_the_parent_goes_on(settings: Path) -> None:
    config = aioconfig.sync.load(File(settings, watch=False), refresh_interval=0.05)
    read, write = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: report over the pipe, and never return into pytest
        status = 1
        try:
            config.refresh(force=True, timeout=5)  # the child's own host answers
            settings.write_text('greeting = "from the child"\n')
            deadline = time.monotonic() + 5
            while config.get("greeting") != "from the child" and time.monotonic() < deadline:
                time.sleep(0.01)  # the child's own poll loop sees the edit: no refresh() call
            forced = config.refresh(force=True, timeout=5)
            os.write(write, f"{config.get('greeting')}|{forced.error}".encode())
            config.close()
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    try:
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read) as pipe:
            assert pipe.read() == "from the child|None"
        assert status == 0
        settings.write_text('greeting = "parent again"\n')
        deadline = time.monotonic() + 5
        while config.get("greeting") != "parent again" and time.monotonic() < deadline:
            time.sleep(0.01)  # the parent's poll loop goes on by itself (it may win any refresh)
        assert config["greeting"] == "parent again"
        assert config.refresh(force=True, timeout=5).error is None
    finally:
        config.close()


def in_child(body: Callable[[], dict[str, Any]], *, within: float = 60.0) -> dict[str, Any]:
    """``body()`` in a forked child; its answer (or its traceback) back over a pipe, as JSON.

    A child that is not done within ``within`` seconds is killed and the test fails (a child
    that waits forever must not hang the suite)."""
    read, write = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: never return into pytest
        try:
            answer = json.dumps(body())
        except BaseException:
            answer = json.dumps({"traceback": traceback.format_exc()})
        finally:
            os.write(write, answer.encode())
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + within
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)
            pytest.fail(f"the forked child was still waiting after {within}s")
        time.sleep(0.02)
    with os.fdopen(read) as pipe:
        reported: dict[str, Any] = json.loads(pipe.read())
    assert "traceback" not in reported, reported["traceback"]
    return reported


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_whose_first_load_fails_says_so_and_tries_again_when_used(settings: Path) -> None:
    config = aioconfig.sync.load(File(settings, watch=False), mode="manual", max_init_wait=0.2)
    good = settings.read_text()
    settings.unlink()  # only the child loads again: the parent is in manual mode

    def failing_then_fixed() -> dict[str, Any]:
        answer: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while config.statistics().state != "failed":  # its own first load: no file
            assert time.monotonic() < deadline, config.statistics()
            time.sleep(0.01)
        stats = config.statistics()
        answer["statistics"] = [
            stats.state,
            stats.version,
            type(stats.last_error).__name__,
            str(settings) in str(stats.last_error),
            stats.consecutive_failures >= 1,
        ]
        answer["status"] = [config.status().state, in_thread(config.status).state]
        answer["served"] = config["greeting"]  # the inherited snapshot, as documented
        answer["repr"] = repr(config)
        result = config.refresh(timeout=30)  # the last failure (or the attempt in flight's)
        assert result.snapshot is not None
        answer["refresh"] = [type(result.error).__name__, result.snapshot.version]
        failures = config.statistics().consecutive_failures
        forced = config.refresh(force=True, timeout=30)  # tries again at once: fails again
        answer["forced"] = [
            type(forced.error).__name__,
            config.statistics().consecutive_failures > failures,
        ]
        settings.write_text(good.replace("hello", "fixed"))
        fixed = config.refresh(force=True, timeout=30)  # no need to wait out the backoff
        answer["fixed"] = [fixed.error is None, config.statistics().state, config.version]
        answer["fixed"] += [config["greeting"], config.status().state]
        with config.changes(timeout=30) as events:
            answer["pending"] = events.pending()
        config.close()
        answer["closed"] = config.statistics().state
        return answer

    def closed_before_its_own_load() -> dict[str, Any]:
        while config.statistics().state != "failed":
            time.sleep(0.01)
        config.close()
        try:
            config["greeting"]
        except ClosedError:
            served = "ClosedError"
        else:
            served = "the inherited snapshot, after close"
        return {"served": served, "state": config.statistics().state}

    try:
        answer = in_child(failing_then_fixed)
        assert answer["statistics"] == ["failed", 1, "InitialLoadError", True, True]
        assert answer["status"] == ["failed", "failed"] and answer["served"] == "hello"
        assert "forked" in answer["repr"] and "failed" in answer["repr"]
        assert answer["refresh"] == ["InitialLoadError", 1]
        assert answer["forced"] == ["InitialLoadError", True]
        assert answer["fixed"] == [True, "opened", 1, "fixed", "opened"]
        assert answer["pending"] == 0 and answer["closed"] == "closed"

        settings.unlink()
        assert in_child(closed_before_its_own_load) == {"served": "ClosedError", "state": "closed"}

        # The parent never noticed: its own Config goes on.
        assert config.statistics().state == "opened" and config["greeting"] == "hello"
        settings.write_text(good)
        assert config.refresh(force=True, timeout=5).error is None
    finally:
        config.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_entering_changes_in_a_child_without_a_configuration_is_bounded(settings: Path) -> None:
    config = aioconfig.sync.load(File(settings, watch=False), mode="manual", max_init_wait=0.2)
    hanging = aioconfig.sync.load(SlowInTheChild(first=60), mode="manual")
    good = settings.read_text()
    settings.unlink()  # the child's first loads fail

    def enter() -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for timeout in (None, 30.0):  # it tries the load at once and says why it failed
            try:
                with config.changes(timeout=timeout):
                    answer[str(timeout)] = "entered"
            except ClosedError as exc:
                answer[str(timeout)] = str(exc)
        try:
            with hanging.changes(timeout=0.5):  # a first load still running: the timeout
                answer["hanging"] = "entered"
        except TimeoutError as exc:
            answer["hanging"] = str(exc)
        hanging.close(timeout=1)
        config.close()
        return answer

    try:
        answer = in_child(enter, within=30)
        for timeout in ("None", "30.0"):
            assert "no configuration of its own" in answer[timeout]
            assert str(settings) in answer[timeout]
        assert "loaded no configuration of its own within 0.5s" in answer["hanging"]
    finally:
        settings.write_text(good)
        hanging.close()
        config.close()


class SlowInTheChild(Source):
    """Answers at once in the parent; in a forked child the first load takes ``first``
    seconds and every later one a minute."""

    def __init__(self, first: float) -> None:
        self.parent = os.getpid()
        self.first = first
        self.child_loads = 0

    @property
    def name(self) -> str:
        return "slow in the child"

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        if os.getpid() != self.parent:
            self.child_loads += 1
            await anyio.sleep(self.first if self.child_loads == 1 else 60)
        return Payload({"n": 1}, 1)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_childs_refresh_timeout_bounds_the_first_load_and_the_refresh_together() -> None:
    config = aioconfig.sync.load(SlowInTheChild(first=1.0), mode="manual")

    def refresh() -> dict[str, Any]:
        started = time.monotonic()
        try:
            config.refresh(force=True, timeout=2.0)  # its first load takes 1 s of the 2
        except TimeoutError as exc:
            return {"error": str(exc), "took": time.monotonic() - started}
        finally:
            config.close(timeout=1)
        return {"error": None}

    try:
        answer = in_child(refresh)
        assert answer["error"] == "SyncConfig.refresh() got no answer within 2.0s"
        assert 1.9 < answer["took"] < 2.7  # not 2 s more for the refresh after the load
    finally:
        config.close()


EXIT_SCRIPT = """
import os, signal, sys, time
import aioconfig.sync
from aioconfig.sources import File

config = aioconfig.sync.load(File(sys.argv[1], watch=False), refresh_interval=0.05)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # what servers do on SIGTERM
print("ready", flush=True)
if sys.argv[2] == "wait":
    while True:
        time.sleep(1)
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_interpreter_exit_and_sigterm_never_hang(settings: Path, how: str) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(EXIT_SCRIPT),
            str(settings),
            "wait" * (how != "exit"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        started = time.perf_counter()
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
        assert time.perf_counter() - started < 2.0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_network_source_works_again_on_another_event_loop() -> None:
    """What a forked worker does: the same Http source, a new loop; its session is new too."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from aioconfig.sources import Http

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"a": 1})

    async def serve_and_load(source: Http | None) -> tuple[Http, int]:
        app = web.Application()
        app.router.add_get("/app.json", handler)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server(access_log=None)
        try:
            source = source or Http(str(server.make_url("/app.json")))
            loaded = await source.load(None)
            assert isinstance(loaded, Payload)
            return source, loaded.data["a"]
        finally:
            await server.close()

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source, first = anyio.run(serve_and_load, None)
    _, second = anyio.run(serve_and_load, source)  # the first loop is closed by now
    assert first == second == 1
    anyio.run(source.aclose)
