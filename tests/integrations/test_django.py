"""Django integration: a real settings module, Django's test client, ``manage.py check``."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.core import checks
from django.test import Client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOOD = '[django]\nsecret_key = "s3cret"\ngreeting = "hello"\n[db]\nport = 5432\n'


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Django set up once for this process with django_project.settings; closed afterwards."""
    path = tmp_path_factory.mktemp("django") / "settings.toml"
    path.write_text(GOOD.replace("[django]", 'greeting = "hello"\n[django]'))
    os.environ["AIOCONFIG_TEST_FILE"] = str(path)
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_project.settings"
    try:
        django.setup()
        yield path
    finally:
        settings.AIOCONFIG.close()
        del os.environ["AIOCONFIG_TEST_FILE"], os.environ["DJANGO_SETTINGS_MODULE"]


def test_views_read_the_live_configuration(project: Path) -> None:
    client = Client()
    assert client.get("/").json() == {"greeting": "hello", "version": 1}
    project.write_text('greeting = "hi"\n' + GOOD)
    assert settings.AIOCONFIG.refresh(force=True, timeout=5).changed  # no view refreshes
    assert client.get("/").json() == {"greeting": "hi", "version": 2}
    assert client.get("/async").json() == {"greeting": "hi"}  # an async view, same object
    assert client.get("/page").content == b"hi v2"  # the context processor
    assert settings.SECRET_KEY == "s3cret"


def test_the_system_check_reports_rejected_candidates(project: Path) -> None:
    assert checks.run_checks(tags=["aioconfig"]) == []
    project.write_text('greeting = "hi"\n' + GOOD.replace("5432", "80"))
    try:
        [message] = checks.run_checks(tags=["aioconfig"])
        assert message.id == "aioconfig.E005" and message.obj == "db.port"
        assert "db.port must gte 1024" in message.msg and settings.AIOCONFIG["db.port"] == 5432
    finally:
        project.write_text('greeting = "hi"\n' + GOOD)


def test_the_exit_hook_closes_only_a_sync_config(project: Path) -> None:
    from django.test import override_settings

    import aioconfig.sync
    from aioconfig.integrations.django.apps import _close

    for foreign in ("a string", {"not": "ours"}, None):
        with override_settings(AIOCONFIG=foreign):
            _close()  # not ours to close: nothing happens, nothing raises at exit
    ours = aioconfig.sync.load(project, mode="manual")
    with override_settings(AIOCONFIG=ours, AIOCONFIG_CLOSE_TIMEOUT=2):
        _close()
    assert ours.statistics().state == "closed"
    assert settings.AIOCONFIG.statistics().state == "opened"  # the project's own: untouched


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers GETs from the server's ``script``: (status, JSON body), the last one repeating."""

    server: ScriptedServer

    def do_GET(self) -> None:
        status, body = self.server.script[min(self.server.served, len(self.server.script) - 1)]
        self.server.served += 1
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ScriptedServer(http.server.ThreadingHTTPServer):
    script: list[tuple[int, object]]
    served = 0


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def manage_check(settings_file: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "AIOCONFIG_TEST_FILE": str(settings_file),
        "DJANGO_SETTINGS_MODULE": "django_project.settings",
    }
    if url is not None:
        env["AIOCONFIG_TEST_URL"] = url
    return subprocess.run(
        [sys.executable, str(HERE / "django_manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_manage_py_check(tmp_path: Path, scripted: ScriptedServer) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(GOOD)
    url = f"http://127.0.0.1:{scripted.server_address[1]}/config.json"

    clean = manage_check(settings_file)
    assert clean.returncode == 0 and "no issues" in clean.stdout, clean.stderr

    scripted.script = [(200, {"db": {"port": 6432}}), (200, {"db": {"port": 80}})]
    invalid = manage_check(settings_file, url)
    assert invalid.returncode == 1, invalid.stderr
    assert "db.port: (aioconfig.E005) db.port must gte 1024" in invalid.stderr

    scripted.script, scripted.served = [(200, {"db": {"port": 6432}}), (503, {})], 0
    down = manage_check(settings_file, url)
    assert down.returncode == 1, down.stderr
    assert "(aioconfig.E004) cannot read source:" in down.stderr and "503" in down.stderr
    assert "The last good configuration keeps serving" in down.stderr
