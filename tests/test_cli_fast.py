"""The command line's fast path: one-shot commands over local sources, read without an event loop.

Each command runs in this process twice, through the fast path and through the engine (the
``_FAST`` switch off), and must print the same thing, byte for byte, and exit the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_cli import SECTIONS

from aioconfig import Secret, _cli
from aioconfig.sources import Env, File, Glob, NotModified, Payload, SecretsDir, Source, Static


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "settings.toml").write_text('[db]\nhost = "localhost"\nport = 5432\n')
    (tmp_path / "extra.json").write_text('{"db": {"port": 6543}, "name": "inventory"}')
    (tmp_path / ".env").write_text("MYAPP_DB__USER=admin\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db__password").write_text("hunter2\n")
    return tmp_path


LOCAL: dict[str, Callable[[Path], Source]] = {
    "file": lambda tree: File(tree / "settings.toml"),
    "glob": lambda tree: Glob(f"{tree}/*.*"),
    "env": lambda tree: Env("MYAPP", environ={"MYAPP_DB__PORT": "1"}, dotenv=tree / ".env"),
    "secrets": lambda tree: SecretsDir(tree / "secrets"),
    "static": lambda tree: Static({"db": {"port": 5432}}),
}


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.anyio
async def test_a_local_source_reads_the_same_with_and_without_an_event_loop(
    tree: Path, name: str
) -> None:
    blocking, loaded = LOCAL[name](tree), LOCAL[name](tree)
    first = blocking._load_blocking(None)
    assert isinstance(first, Payload)
    expected = await loaded.load(None)
    assert isinstance(expected, Payload)
    assert first.data == expected.data
    assert first.token == expected.token
    assert isinstance(blocking._load_blocking(first.token), NotModified)
    if name == "secrets":
        assert first.data == {"db": {"password": Secret("hunter2")}}


def test_a_network_source_needs_the_event_loop() -> None:
    from aioconfig.sources import Http

    assert Http("http://127.0.0.1:9/settings.json")._load_blocking(None) is None


# -- the same answers as the engine -----------------------------------------------------------

SETTINGS = """\
name = "inventory"
url = "@format postgres://{db.user}:{db.password}@{db.host}:{db.port}/app"

[db]
host = "localhost"
port = 5432
user = "app"
password = "hunter2"
replicas = ["r1", "r2"]

[db.pool]
max_size = 10

[feature]
servers = [{ host = "a", token = "t0k3n" }, { host = "b", weight = 2 }]
"""
FILES = {
    "settings.toml": SETTINGS,
    "sections.toml": SECTIONS,
    "extra.json": '{"db": {"port": 6543, "timeout": null}, "tags": ["a", "b"]}',
    "extra.yaml": "db:\n  host: db.yaml\nlimits:\n  rps: 2.5\n",
    "extra.ini": "[db]\nhost = db.ini\n",
    "extra.env": "name=from-dotenv\nexport debug='yes'\n",
    "app.conf": 'name = "from conf"\n',
    "upper.toml": '[DB]\nHost = "UPPER"\n',
    "merge.toml": '[db]\nreplicas = "@merge [\\"r3\\"]"\nport = "@int 7000"\n',
    "validators.toml": '[default]\n"db.port" = { must_exist = true, gte = 1024 }\n'
    '"db.timeout" = { default = 30 }\n',
    "failing.toml": '[default]\n"db.port" = { lte = 1024 }\n"db.host" = { ne = "localhost" }\n',
    "broken.toml": "[db\nhost = 1\n",
}
ENVIRON = {
    "MYAPP_DB__PORT": "6000",
    "MYAPP_DB__PASSWORD": "from-env",
    "MYAPP_DEBUG": "true",
    "MYAPP_LIMITS": "{retries = 10, backoff = 0.5}",
    "MYAPP_TAGS": "[1, 2]",
    "MYAPP_DB__REPLICAS": '@merge ["r9"]',
    "MYAPP_NAME": "@format {db.host}-app",
    "MYAPP_ENV": "production",
}


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _aioconfig_logger_restored() -> Iterator[None]:
    """main() sets up the aioconfig logger for a command line; the next test gets it back."""
    logger = logging.getLogger("aioconfig")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("AIOCONFIG_", "MYAPP_"))]:
        monkeypatch.delenv(name)
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    return tmp_path


class Runner:
    """Runs ``aioconfig._cli.main`` in this process, with the fast path allowed or not, and
    counts the commands that opened a Config."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys, self.monkeypatch = capsys, monkeypatch
        self.opened = 0
        real_open = _cli._open

        def counted(*args: Any) -> Any:
            self.opened += 1
            return real_open(*args)

        monkeypatch.setattr(_cli, "_open", counted)

    def run(self, argv: Sequence[str], *, fast: bool) -> Outcome:
        self.monkeypatch.setattr(_cli, "_FAST", fast)
        self.capsys.readouterr()
        try:
            code = _cli.main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = self.capsys.readouterr()
        return Outcome(code, out, err)

    def both(self, argv: Sequence[str]) -> tuple[Outcome, Outcome, bool]:
        """The fast path's outcome, the engine's, and whether the fast path fell back."""
        opened = self.opened
        fast = self.run(argv, fast=True)
        fell_back = self.opened > opened
        engine = self.run(argv, fast=False)
        return fast, engine, fell_back


@pytest.fixture
def runner(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    return Runner(capsys, monkeypatch)


SOURCES = ["-s", "settings.toml", "-s", "extra.json", "-s", "env:MYAPP"]
ANSWERED = {
    "get a string": ["-s", "settings.toml", "get", "db.host"],
    "get a number": ["-s", "settings.toml", "get", "db.port"],
    "get a section, secrets masked": ["-s", "settings.toml", "get", "db"],
    "get a secret": ["-s", "settings.toml", "get", "db.password"],
    "get a secret, revealed": ["-s", "settings.toml", "get", "db.password", "--reveal"],
    "get @format built from a secret": ["-s", "settings.toml", "get", "url"],
    "get @format, revealed": ["-s", "settings.toml", "--reveal", "get", "url"],
    "get a missing key": ["-s", "settings.toml", "get", "db.hots"],
    "get over json": ["-s", "settings.toml", "-s", "extra.json", "get", "db"],
    "get over yaml": ["-s", "settings.toml", "-s", "extra.yaml", "get", "db.host"],
    "get over ini": ["-s", "settings.toml", "-s", "extra.ini", "get", "db"],
    "get over an env file": ["-s", "settings.toml", "-s", "extra.env", "get", "name"],
    "PATH:FORMAT": ["-s", "app.conf:toml", "get", "name"],
    "typed variables": [*SOURCES, "get", "limits"],
    "typed variables, all": [*SOURCES, "dump", "--reveal"],
    "env @format": [*SOURCES, "get", "name"],
    "@merge from a file": ["-s", "settings.toml", "-s", "merge.toml", "get", "db"],
    "@merge from a variable": [*SOURCES, "get", "db.replicas"],
    "--env": ["-s", "sections.toml", "--env", "production", "dump"],
    "--environments from MYAPP_ENV": [
        *["-s", "sections.toml", "-s", "env:MYAPP", "--environments", "get", "db"]
    ],
    "--environments, the default": ["-s", "sections.toml", "--environments", "get", "db.host"],
    "--env-var": ["-s", "sections.toml", "--environments", "--env-var", "STAGE", "get", "db"],
    "case-insensitive": ["-s", "upper.toml", "--case-insensitive", "get", "db.host"],
    "case-insensitive, explain": ["-s", "upper.toml", "--case-insensitive", "explain", "DB.HOST"],
    "list": [*SOURCES, "list"],
    "list a section": [*SOURCES, "list", "db"],
    "list --json": [*SOURCES, "list", "--json"],
    "list --json --reveal": [*SOURCES, "list", "--json", "--reveal"],
    "list a missing section": [*SOURCES, "list", "dbb"],
    "dump": [*SOURCES, "dump"],
    "dump --sort-keys": [*SOURCES, "dump", "--sort-keys"],
    "dump json, a null": ["-s", "settings.toml", "-s", "extra.json", "dump", "-f", "json"],
    "dump toml, a null left out": ["-s", "settings.toml", "-s", "extra.json", "dump", "-f", "toml"],
    "dump yaml": ["-s", "settings.toml", "-s", "extra.yaml", "dump", "-f", "yaml"],
    "explain from three layers": [*SOURCES, "explain", "db.port"],
    "explain a secret": [*SOURCES, "explain", "db.password"],
    "explain a secret, revealed": [*SOURCES, "explain", "db.password", "--reveal"],
    "explain @format": ["-s", "settings.toml", "explain", "url"],
    "explain a section's environment": [
        *["-s", "sections.toml", "--env", "production", "explain", "db.host"]
    ],
    "explain a variable of an env file": [
        *["-s", "settings.toml", "-s", "extra.env", "-s", "extra.ini", "explain", "name"]
    ],
    "explain a missing key": [*SOURCES, "explain", "db.prot"],
    "validate": ["-s", "settings.toml", "-s", "extra.json", "validate", "-V", "validators.toml"],
    "the default file": ["get", "name"],
}


@pytest.mark.parametrize("argv", ANSWERED.values(), ids=ANSWERED.keys())
def test_the_fast_path_answers_as_the_engine_does(
    project: Path, runner: Runner, argv: list[str]
) -> None:
    fast, engine, fell_back = runner.both(argv)
    assert not fell_back, "the fast path should have answered"
    assert fast == engine
    assert engine.out or engine.err


FALLING_BACK = {
    "a malformed file": ["-s", "broken.toml", "get", "db.host"],
    "a malformed file among others": ["-s", "settings.toml", "-s", "broken.toml", "dump"],
    "a missing file": ["-s", "settings.toml", "-s", "nowhere.toml", "get", "db.host"],
    "a directory": ["-s", "settings.toml", "-s", "conf.d:json", "list"],
    "failing validators": ["-s", "settings.toml", "validate", "-V", "failing.toml"],
    "a conflict between variables": ["-s", "settings.toml", "-s", "env:CLASH", "get", "db"],
    "an empty --env": ["-s", "sections.toml", "--env", " ", "get", "db"],
    "a bad cast": ["-s", "settings.toml", "-s", "env:BAD", "get", "x"],
}


@pytest.mark.parametrize("argv", FALLING_BACK.values(), ids=FALLING_BACK.keys())
def test_on_any_problem_the_engine_answers(
    project: Path, runner: Runner, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    (project / "conf.d").mkdir()
    monkeypatch.setenv("CLASH_DB", "1")  # db a value and a section
    monkeypatch.setenv("CLASH_DB__HOST", "x")
    monkeypatch.setenv("BAD_X", "@int forty")
    fast, engine, fell_back = runner.both(argv)
    assert fell_back, "the engine should have answered"
    assert fast == engine
    assert engine.code != 0 and engine.err.startswith("aioconfig: ")


def test_usage_errors_come_before_either_path(project: Path, runner: Runner) -> None:
    fast, engine, fell_back = runner.both(["-s", "settings.toml", "validate", "-V", "none.toml"])
    assert not fell_back
    assert fast == engine
    assert fast.code == 2 and "no validators file 'none.toml'" in fast.err


def test_debug_and_watch_take_the_engine(project: Path, runner: Runner) -> None:
    fast, engine, fell_back = runner.both(["-s", "settings.toml", "--debug", "get", "db.host"])
    assert fell_back
    assert fast.out == engine.out == "localhost\n"


def test_a_network_source_takes_the_engine(project: Path, runner: Runner) -> None:
    argv = ["-s", "settings.toml", "-s", "http://127.0.0.1:9/app.json", "--timeout", "0"]
    fast, engine, fell_back = runner.both([*argv, "get", "db.host"])
    assert fell_back
    assert fast == engine
    assert fast.code == 2 and "127.0.0.1:9" in fast.err
