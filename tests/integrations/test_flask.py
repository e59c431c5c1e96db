"""Flask integration: Flask's test client, and a real ``gunicorn --preload -w 2``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string
from process_helpers import children, free_port, gone

from aioconfig.integrations.flask import AioConfig, get_config, get_snapshot
from aioconfig.sources import File
from aioconfig.sync import SyncConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text('greeting = "hello"\nSECRET_KEY = "one"\nMAX_CONTENT_LENGTH = 1024\n')
    return path


@pytest.fixture
def app(settings: Path) -> Iterator[Flask]:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 99

    @app.get("/")
    def index() -> dict[str, Any]:
        return {"greeting": get_snapshot()["greeting"], "secret": app.config.get("SECRET_KEY")}

    @app.get("/twice")
    def twice() -> dict[str, Any]:
        first = get_snapshot()
        settings.write_text('greeting = "changed mid-request"\n')
        assert get_config().refresh(force=True, timeout=5).changed
        return {"first": first.version, "second": get_snapshot().version}

    @app.get("/page")
    def page() -> str:
        return render_template_string("{{ aioconfig.greeting }} v{{ aioconfig.version }}")

    AioConfig(app, File(settings, watch=False), mode="manual")
    yield app
    AioConfig.close(app)


def test_a_view_serves_the_new_value_without_calling_refresh(app: Flask, settings: Path) -> None:
    client = app.test_client()
    assert client.get("/").json == {"greeting": "hello", "secret": "one"}
    settings.write_text('greeting = "hi"\nSECRET_KEY = "two"\n')
    assert get_config(app).refresh(force=True, timeout=5).changed  # the background's job
    assert client.get("/").json == {"greeting": "hi", "secret": "two"}
    # A key that left the configuration gets back what app.config had before.
    assert app.config["MAX_CONTENT_LENGTH"] == 99 and "greeting" not in app.config


def test_one_snapshot_per_request_and_in_templates(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/twice").json == {"first": 1, "second": 1}
    assert client.get("/page").text == "changed mid-request v2"


def test_init_app_and_the_app_extensions(settings: Path) -> None:
    extension = AioConfig(None, settings, mode="manual", mirror=lambda key: key == "greeting")
    app = Flask(__name__)
    config = extension.init_app(app)
    try:
        assert isinstance(config, SyncConfig) and app.extensions["aioconfig"] is config
        assert app.config["greeting"] == "hello" and app.config["SECRET_KEY"] is None
        with pytest.raises(RuntimeError, match="already set up"):
            extension.init_app(app)
    finally:
        AioConfig.close(app)
    with pytest.raises(TypeError):
        AioConfig(app)
    unmirrored = Flask(__name__)
    AioConfig(unmirrored, settings, mirror=False)
    try:
        assert unmirrored.config.get("SECRET_KEY") is None
    finally:
        AioConfig.close(unmirrored)


def test_close_then_init_app_again_on_an_app_that_has_served(settings: Path) -> None:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 99

    @app.get("/")
    def index() -> dict[str, Any]:
        return {"greeting": get_snapshot()["greeting"], "max": app.config["MAX_CONTENT_LENGTH"]}

    @app.get("/plain")
    def plain() -> str:
        return "up"

    extension = AioConfig(app, File(settings, watch=False), mode="manual")
    client = app.test_client()
    assert client.get("/").json == {"greeting": "hello", "max": 1024}

    AioConfig.close(app)
    assert "aioconfig" not in app.extensions
    AioConfig.close(app)  # idempotent
    assert client.get("/plain").text == "up"  # the app serves on without it
    with pytest.raises(RuntimeError, match="not set up"):
        get_config(app)

    settings.write_text('greeting = "again"\n')  # no MAX_CONTENT_LENGTH any more
    config = extension.init_app(app)  # after a request: Flask takes no new hooks by now
    try:
        assert app.extensions["aioconfig"] is config and config["greeting"] == "again"
        assert client.get("/").json == {"greeting": "again", "max": 99}  # the app's own, back
        settings.write_text('greeting = "live"\nMAX_CONTENT_LENGTH = 7\n')
        assert config.refresh(force=True, timeout=5).changed
        assert client.get("/").json == {"greeting": "live", "max": 7}
    finally:
        AioConfig.close(app)


def get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_gunicorn_preload_two_workers_each_refresh_and_exit_on_sigterm(settings: Path) -> None:
    settings.write_text('greeting = "before"\nGREETING = "BEFORE"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "--workers=2",
            f"--bind=127.0.0.1:{port}",
            f"--pythonpath={HERE}",
            "flask_gunicorn_app:app",
        ],
        env={
            **os.environ,
            "AIOCONFIG_TEST_FILE": str(settings),
            "PYTHONPATH": str(ROOT),
            # where newer gunicorns put their control socket: not in the real home
            "HOME": str(settings.parent),
            "XDG_RUNTIME_DIR": str(settings.parent),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 15
        while get(url) is None or len(children(master.pid)) < 2:
            assert master.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.05)
        workers = children(master.pid)

        settings.write_text('greeting = "after"\nGREETING = "AFTER"\n')
        fresh: set[int] = set()
        last: dict[int, Any] = {}
        while fresh != set(workers):  # each worker must see it by itself: no refresh() anywhere
            assert time.monotonic() < deadline + 15, f"only {fresh} of {workers} refreshed: {last}"
            answer = get(url)
            if answer is not None:
                last[answer["pid"]] = answer
            if answer is not None and answer["greeting"] == "after":
                assert answer["mirrored"] == "AFTER"
                fresh.add(answer["pid"])

        started = time.monotonic()
        master.send_signal(signal.SIGTERM)
        master.wait(5)
        while not all(gone(pid) for pid in workers):
            assert time.monotonic() - started < 5, "a worker outlived SIGTERM by 5 s"
            time.sleep(0.01)
        assert time.monotonic() - started < 5
        assert master.returncode == 0
    finally:
        for pid in [*workers, master.pid]:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        if master.poll() is None:
            master.wait()
        assert master.stderr is not None
        log = master.stderr.read().decode()
        master.stderr.close()
    assert "Traceback" not in log, log
