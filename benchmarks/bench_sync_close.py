"""How long a SyncConfig takes to go away: ``close()``, interpreter exit, gunicorn on SIGTERM.

Three measurements, each the median (and best) of several rounds:

- ``close()``: in this process, ``aioconfig.sync.load(File("settings.toml", watch=False))``
  then ``config.close()``; the close alone is timed (stop the loop, close the source, join the
  thread).
- **Interpreter exit**: a new interpreter (``sys.executable``) loads the configuration (or
  does not: the baseline imports the same modules and reads the file itself), prints
  ``ready`` and reaches the end of its script. Timed from reading ``ready`` to the process
  being reaped: ``atexit`` (which closes the SyncConfig), thread shutdown and finalization.
- **gunicorn** (when it is installed, on Linux, which the timing reads ``/proc`` for):
  ``gunicorn --preload -w 2`` serving a tiny Flask app that uses ``AioConfig`` (polling the
  file every 0.1 s, as the issue's test does), against the same app without it. Once both
  workers answer, the master gets ``SIGTERM``; timed until the master and both workers are
  gone.

The command column names the scripts this file writes to a temporary directory (their text is
``EXIT_WITH``, ``EXIT_WITHOUT``, ``APP_WITH`` and ``APP_WITHOUT`` below).

Run: ``python benchmarks/bench_sync_close.py [rounds]`` (default 9).
"""

from __future__ import annotations

import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from _common import ROOT, machine, table

from tests.process_helpers import children, free_port, gone

SETTINGS = 'greeting = "hello"\nGREETING = "HELLO"\n[db]\nport = 5432\n'

EXIT_WITH = """\
import sys
import aioconfig.sync
from aioconfig.sources import File
config = aioconfig.sync.load(File(sys.argv[1], watch=False), refresh_interval=0.1)
assert config["greeting"] == "hello"
print("ready", flush=True)
"""

EXIT_WITHOUT = """\
import sys, tomllib
import aioconfig.sync
from aioconfig.sources import File
with open(sys.argv[1], "rb") as file:
    assert tomllib.load(file)["greeting"] == "hello"
print("ready", flush=True)
"""

APP_WITH = """\
import os
from flask import Flask
from aioconfig.integrations.flask import AioConfig, get_snapshot
from aioconfig.sources import File

app = Flask(__name__)
AioConfig(app, File(os.environ["BENCH_SETTINGS"], watch=False), refresh_interval=0.1)


@app.get("/")
def index():
    return {"pid": os.getpid(), "greeting": get_snapshot()["greeting"]}
"""

APP_WITHOUT = """\
import os, tomllib
from flask import Flask

app = Flask(__name__)
with open(os.environ["BENCH_SETTINGS"], "rb") as file:
    SETTINGS = tomllib.load(file)


@app.get("/")
def index():
    return {"pid": os.getpid(), "greeting": SETTINGS["greeting"]}
"""


def summary(samples: list[float]) -> tuple[str, str]:
    """(median, best) in milliseconds."""
    return f"{statistics.median(samples) * 1e3:.1f}", f"{min(samples) * 1e3:.1f}"


def time_close(settings: Path, rounds: int) -> list[float]:
    import aioconfig.sync
    from aioconfig.sources import File

    samples = []
    for _ in range(rounds + 1):  # the first round warms imports and caches up
        config = aioconfig.sync.load(File(settings, watch=False), refresh_interval=0.1)
        started = time.perf_counter()
        config.close()
        samples.append(time.perf_counter() - started)
    return samples[1:]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": ROOT, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_exit(script: Path, settings: Path) -> float:
    process = subprocess.Popen(
        [sys.executable, str(script), str(settings)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    started = time.perf_counter()
    code = process.wait(30)
    took = time.perf_counter() - started
    process.stdout.close()
    if line != "ready\n" or code != 0:
        raise RuntimeError(f"the child failed: {line!r}, exit status {code}")
    return took


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def gunicorn_command(module: str, port: int, directory: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--preload",
        "--workers=2",
        f"--bind=127.0.0.1:{port}",
        f"--pythonpath={directory}",
        f"{module}:app",
    ]


def time_gunicorn(module: str, directory: Path, settings: Path) -> float:
    port = free_port()
    master = subprocess.Popen(
        gunicorn_command(module, port, directory),
        env=child_env(
            BENCH_SETTINGS=str(settings), HOME=str(directory), XDG_RUNTIME_DIR=str(directory)
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not answers(f"http://127.0.0.1:{port}/") or len(children(master.pid)) < 2:
            if master.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn {module} did not start")
            time.sleep(0.02)
        workers = children(master.pid)
        time.sleep(0.3)  # both workers settled (booted, polling)
        started = time.perf_counter()
        master.send_signal(signal.SIGTERM)
        master.wait(30)
        while not all(gone(pid) for pid in workers):
            if time.perf_counter() - started > 30:
                raise RuntimeError("a worker outlived SIGTERM by 30 s")
            time.sleep(0.001)
        return time.perf_counter() - started
    finally:
        for pid in [*workers, master.pid]:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        if master.poll() is None:
            master.wait()


def has_gunicorn() -> bool:
    found = subprocess.run(
        [sys.executable, "-c", "import gunicorn, flask"], capture_output=True, env=child_env()
    )
    return found.returncode == 0 and sys.platform.startswith("linux")


def rounds_of(measure: Callable[[], float], rounds: int) -> list[float]:
    measure()  # warm-up: byte-code written, caches warm
    return [measure() for _ in range(rounds)]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    print(f"python benchmarks/bench_sync_close.py {rounds}  ({machine()})\n")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        settings = directory / "settings.toml"
        settings.write_text(SETTINGS)
        (directory / "app_with.py").write_text(APP_WITH)
        (directory / "app_without.py").write_text(APP_WITHOUT)
        rows: list[list[str]] = []

        median, best = summary(time_close(settings, rounds))
        rows.append(["SyncConfig.close(), file source", median, best, "in this process"])

        for name, text in (("with", EXIT_WITH), ("without", EXIT_WITHOUT)):
            script = directory / f"exit_{name}.py"
            script.write_text(text)
            median, best = summary(rounds_of(lambda s=script: time_exit(s, settings), rounds))
            label = f"interpreter exit, {name} a SyncConfig"
            rows.append([label, median, best, f"python {script.name} settings.toml"])

        if has_gunicorn():
            for module, label in (("app_with", "with AioConfig"), ("app_without", "without")):
                median, best = summary(
                    rounds_of(lambda m=module: time_gunicorn(m, directory, settings), rounds)
                )
                command = shlex.join(gunicorn_command(module, 0, Path("."))[1:])
                command = command.replace("127.0.0.1:0", "127.0.0.1:PORT")
                rows.append([f"gunicorn SIGTERM to all gone, {label}", median, best, command])
        else:
            rows.append(["gunicorn SIGTERM to all gone", "n/a", "n/a", "gunicorn not installed"])

    print(table(["measure", "median ms", "best ms", "command"], rows))
    print(f"\n{rounds} rounds each (one warm-up round first).")


if __name__ == "__main__":
    main()
