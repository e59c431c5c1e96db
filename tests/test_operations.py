"""What an on-call engineer sees: start-up and recovery logs on per-source loggers,
``Config.status()``, and the OpenTelemetry metrics (read with the SDK's in-memory reader)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from http_helpers import serve, wait_until
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from process_helpers import free_port

from aioconfig import (
    FileCache,
    InitialLoadError,
    SourceUnavailable,
    ValidationError,
    Validator,
    load,
)
from aioconfig.sources import File, Http
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


# -- start-up feedback --------------------------------------------------------------------------


async def test_each_failed_start_up_attempt_is_logged_on_the_sources_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/config.json"
    caplog.set_level(logging.INFO, logger="aioconfig")
    with pytest.raises(InitialLoadError):
        await load(Http(url), max_init_wait=0.6)
    attempts = [r for r in records(caplog, "aioconfig.sources.http") if "attempt" in r.message]
    assert len(attempts) >= 2
    first, *later = attempts
    assert first.levelno == logging.WARNING  # a new failure
    assert all(r.levelno == logging.INFO for r in later)  # the same one again
    assert first.message.startswith(f"start-up attempt 1 failed: {url}: connection refused")
    assert "next attempt in" in first.message
    assert "left of max_init_wait=0.6s" in first.message


async def test_a_slow_source_at_start_up_is_named_while_it_is_awaited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await anyio.sleep(1.3)
        return web.json_response({"ok": True})

    caplog.set_level(logging.INFO, logger="aioconfig")
    async with serve(("/config.json", slow)) as server:
        url = str(server.make_url("/config.json"))
        async with load(Http(url), max_init_wait=5, mode="manual") as config:
            assert config["ok"] is True
    waiting = [r for r in records(caplog, "aioconfig.sources.http") if "waiting" in r.message]
    assert [r.levelno for r in waiting] == [logging.INFO]
    assert waiting[0].message.startswith(f"start-up: waiting for {url} for 1.0s")
    assert "left of max_init_wait=5s" in waiting[0].message


# -- recovery, status and per-source loggers ----------------------------------------------------


async def test_a_recovery_is_logged_once_with_how_long_and_how_many_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    source = MutableSource({"a": 1}, name="etcd://10.0.0.1:2379/app/")
    caplog.set_level(logging.INFO, logger="aioconfig")
    async with load(source, mode="manual", clock=clock) as config:
        assert config.status().sources[0].failures == 0
        source.fail(SourceUnavailable(source.name, "connection refused"))
        await config.refresh(force=True)
        await clock.advance(5.0)
        await config.refresh(force=True)
        await clock.advance(7.4)
        (status,) = config.status().sources
        assert status.failures == 2
        assert status.failing == pytest.approx(12.4)
        assert status.answered == pytest.approx(12.4)
        assert status.error == "etcd://10.0.0.1:2379/app/: connection refused"
        source.fail(None)
        await config.refresh(force=True)
        (status,) = config.status().sources
        assert (status.failures, status.failing, status.error) == (0, None, None)
        assert status.answered == 0
    mine = records(caplog, "aioconfig.sources.mutablesource")
    recovered = [r for r in mine if "answering again" in r.message]
    assert [r.message for r in recovered] == [
        "etcd://10.0.0.1:2379/app/: answering again after 12.4s, 2 failures"
    ]
    assert recovered[0].levelno == logging.INFO
    failed = [r for r in mine if r.message.startswith("configuration refresh failed")]
    assert [r.levelno for r in failed] == [logging.WARNING]  # once: the same failure again is DEBUG


async def test_one_noisy_source_is_turned_down_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    noisy = MutableSource({"a": 1}, name="noisy")
    caplog.set_level(logging.INFO, logger="aioconfig")
    logging.getLogger("aioconfig.sources.mutablesource").setLevel(logging.ERROR)
    try:
        validators = [Validator("b", must_exist=True, when=Validator("a", eq=2))]
        async with load(noisy, mode="manual", validators=validators) as config:
            noisy.fail(SourceUnavailable("noisy", "down"))
            await config.refresh(force=True)
            noisy.fail(None)
            noisy.set({"a": 2})  # refused by the validators: the engine's own news
            result = await config.refresh(force=True)
            assert isinstance(result.error, ValidationError)
    finally:
        logging.getLogger("aioconfig.sources.mutablesource").setLevel(logging.NOTSET)
    assert records(caplog, "aioconfig.sources.mutablesource") == []
    (refused,) = records(caplog, "aioconfig")
    assert refused.levelno == logging.WARNING and "validation" in refused.message


async def test_status_says_when_the_configuration_comes_from_the_cache(tmp_path: Path) -> None:
    source = MutableSource({"a": 1})
    cache = FileCache(tmp_path / "cache.json")
    async with load(source, mode="manual", cache=cache):
        pass
    source.fail(SourceUnavailable("mutable", "down"))
    async with load(source, mode="manual", cache=cache, max_init_wait=0.1) as config:
        status = config.status()
        assert status.from_cache and status.state == "opened" and status.version == 1
        assert status.sources[0].failures >= 1 and status.sources[0].answered is None
        source.fail(None)
        await config.refresh(force=True)
        assert not config.status().from_cache
        assert config.status().sources[0].answered == pytest.approx(0, abs=1)


# -- metrics ------------------------------------------------------------------------------------


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    _providers[id(reader)] = provider
    yield reader
    provider.shutdown()
    del _providers[id(reader)]


_providers: dict[int, MeterProvider] = {}


def provider_of(reader: InMemoryMetricReader) -> MeterProvider:
    return _providers[id(reader)]


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Every data point read now: instrument name -> [(attributes, point)]."""
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "aioconfig"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    found.setdefault(metric.name, []).append((attributes, point))
    return found


def value(found: dict[str, list[tuple[dict[str, Any], Any]]], name: str, **attrs: str) -> Any:
    matching = [p for a, p in found.get(name, []) if attrs.items() <= a.items()]
    assert len(matching) == 1, (name, attrs, found.get(name))
    point = matching[0]
    return point.count if hasattr(point, "count") else point.value


async def test_metrics_count_refreshes_fetches_rejections_and_observe_the_rest(
    reader: InMemoryMetricReader,
) -> None:
    provider = provider_of(reader)
    clock = FakeClock()
    source = MutableSource({"port": 80}, name="main")
    validators = [Validator("port", gte=1)]
    async with load(
        source, mode="manual", clock=clock, validators=validators, meter_provider=provider
    ) as config:
        async with config.changes():
            await config.refresh(force=True)  # unchanged
            source.set({"port": 81})
            await config.refresh(force=True)  # changed
            source.set({"port": 0})
            await config.refresh(force=True)  # refused by the validators
            source.fail(SourceUnavailable("main", "down"))
            await config.refresh(force=True)  # failed
            source.fail(None)
            await clock.advance(3.0)
            found = points(reader)
    where = {"config": "main"}
    assert value(found, "aioconfig.refreshes", outcome="unchanged", **where) == 1
    assert value(found, "aioconfig.refreshes", outcome="changed", **where) == 1
    assert value(found, "aioconfig.refreshes", outcome="failed", **where) == 2
    assert value(found, "aioconfig.fetches", source="main", outcome="data") == 3  # first load too
    assert value(found, "aioconfig.fetches", source="main", outcome="not_modified") == 1
    assert value(found, "aioconfig.fetches", source="main", outcome="failed") == 1
    assert value(found, "aioconfig.rejected", reason="validators") == 1
    assert value(found, "aioconfig.refresh.duration", outcome="failed") == 2  # a count
    assert value(found, "aioconfig.version", **where) == 2
    assert value(found, "aioconfig.subscribers", **where) == 1
    # the source last answered (a refused candidate is still an answer) 3 s ago
    assert value(found, "aioconfig.staleness", source="main") == pytest.approx(3.0)
    # closed: no longer observed
    assert "aioconfig.version" not in points(reader)


async def test_a_validate_hook_rejection_is_counted_as_such(
    reader: InMemoryMetricReader,
) -> None:
    source = MutableSource({"a": 1})

    def validate(snapshot: Any) -> None:
        if snapshot["a"] > 1:
            raise ValueError("too big")

    provider = provider_of(reader)
    async with load(source, mode="manual", validate=validate, meter_provider=provider) as config:
        source.set({"a": 2})
        assert (await config.refresh(force=True)).error is not None
        assert value(points(reader), "aioconfig.rejected", reason="validate") == 1


async def test_propagation_is_measured_from_the_files_mtime_to_the_swap(
    reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text('{"a": 1}')
    provider = provider_of(reader)
    async with load(File(settings), refresh_interval=0.05, meter_provider=provider) as config:
        assert "aioconfig.propagation" not in points(reader)  # not for the first load
        settings.write_text('{"a": 2}')
        past = time.time() - 2.0
        os.utime(settings, (past, past))  # as if edited 2 s ago
        await wait_until(lambda: config.get("a") == 2)
        (spent,) = [p for _, p in points(reader)["aioconfig.propagation"]]
        assert spent.count == 1 and 2.0 <= spent.sum < 7.0


GLOBAL_PROVIDER = """
import anyio
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import aioconfig
from aioconfig.sources import Static

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


async def main():
    async with aioconfig.load(Static({"a": 1}), mode="manual"):
        data = reader.get_metrics_data()
        names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
        print(sorted(n for n in names if n.startswith("aioconfig.")))

anyio.run(main)
"""


def test_an_application_that_configured_the_sdk_gets_the_metrics_without_an_option(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "aioconfig.fetches" in done.stdout and "aioconfig.version" in done.stdout


async def test_a_candidate_that_cannot_be_built_is_counted_as_such(
    reader: InMemoryMetricReader,
) -> None:
    source = MutableSource({"a": {"b": 1}})
    provider = provider_of(reader)
    async with load(source, mode="manual", meter_provider=provider) as config:
        source.set({"a": {"b": 1}, "a.b": 2})  # one path spelled two ways: no candidate
        assert (await config.refresh(force=True)).error is not None
        assert value(points(reader), "aioconfig.rejected", reason="build") == 1


async def test_propagation_is_measured_from_last_modified_to_the_swap(
    reader: InMemoryMetricReader,
) -> None:
    body = {"text": '{"a": 1}', "modified": "Mon, 01 Jan 2024 00:00:00 GMT"}

    async def document(request: web.Request) -> web.Response:
        return web.Response(
            text=body["text"],
            content_type="application/json",
            headers={"Last-Modified": body["modified"]},
        )

    provider = provider_of(reader)
    async with serve(("/config.json", document)) as server:
        url = str(server.make_url("/config.json"))
        async with load(Http(url), mode="manual", meter_provider=provider) as config:
            assert "aioconfig.propagation" not in points(reader)  # not for the first load
            body["text"] = '{"a": 2}'
            body["modified"] = formatdate(time.time() - 30.0, usegmt=True)  # 30 s ago
            await config.refresh(force=True)
            assert config["a"] == 2
            (spent,) = [p for _, p in points(reader)["aioconfig.propagation"]]
            assert spent.count == 1 and 29.0 <= spent.sum < 40.0


def test_the_command_line_shows_start_up_attempts_with_debug_only(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/config.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "aioconfig", "-s", url, "--timeout", "0.6", "get", "a"]
    shown = {}
    for debug in (False, True):
        done = subprocess.run(
            command + (["--debug"] if debug else []),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        shown[debug] = done.stderr
    assert "start-up attempt 1 failed" in shown[True] and "connection refused" in shown[True]
    assert "start-up attempt" not in shown[False]  # one error line, the command's own
    assert "connection refused" in shown[False]


async def test_a_quiet_watched_source_is_not_stale(reader: InMemoryMetricReader) -> None:
    clock = FakeClock()
    watched = MutableSource({"a": 1}, name="watched", push=True)
    polled = MutableSource({"b": 1}, name="polled")
    provider = provider_of(reader)
    async with load(
        watched, polled, refresh_interval=3600, clock=clock, meter_provider=provider
    ) as config:
        await wait_until(lambda: config.status().sources[0].watching)
        await clock.advance(600.0)  # ten quiet minutes: nothing changed, nothing polled
        answered = {s.name: s.answered for s in config.status().sources}
        assert answered == {"watched": 0.0, "polled": pytest.approx(600.0)}
        found = points(reader)
        assert value(found, "aioconfig.staleness", source="watched") == 0.0
        assert value(found, "aioconfig.staleness", source="polled") == pytest.approx(600.0)
