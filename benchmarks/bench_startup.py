"""Cold start: a new process loads ``settings.toml`` and reads one key, against the peers.

Every row is a fresh interpreter (``sys.executable``) started in a temporary directory that holds
the same ``settings.toml`` (a few sections, about sixty values). One round starts every subject
once, in a rotated order, so that each sees the same machine; the table gives the median and the
best wall time over the rounds, and the median peak RSS (``ru_maxrss`` of that child alone, from
``os.wait4``). Byte-code is written and used (``PYTHONDONTWRITEBYTECODE`` is removed from the
children's environment, and a warm-up round runs first), as on an installed package.

Subjects:

- ``python``: the interpreter alone (``print("billing")``).
- ``floor``: anyio + orjson + tomllib, reading the file inside ``anyio.run``: what any asyncio
  loader of a TOML file pays at least.
- ``aioconfig``: ``async with load(File("settings.toml"))`` (the default: watched when watchfiles
  is installed), then ``config["app.name"]``.
- ``aioconfig manual``: the same with ``mode="manual"`` (one load, no background work), as a job
  or a CLI would open it.
- ``dynaconf``: ``Dynaconf(settings_files=["settings.toml"]).app.name``. Dynaconf imports Flask
  whenever Flask is installed (for ``FlaskDynaconf``), about 60 ms; the test dependencies install
  it, so this row blocks the import (``sys.modules["flask"] = None``) to time Dynaconf as it
  starts without Flask, its fastest. The next row lets it import Flask.
- ``pydantic-settings``: a ``BaseSettings`` model that ``TomlConfigSettingsSource`` reads.
- ``aioconfig get``: the command line, ``python -m aioconfig -s settings.toml get app.name``.

Run: ``python benchmarks/bench_startup.py [rounds]`` (default 21).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from _common import ROOT, machine, table

SETTINGS = """\
[app]
name = "billing"
debug = false
workers = 4
tags = ["eu", "blue"]

[db]
host = "db.internal"
port = 5432
user = "billing"
pool = { min = 2, max = 20, timeout = 3.5 }

[cache]
url = "redis://cache.internal:6379/0"
ttl = 300
""" + "".join(
    f"\n[feature{i}]\n" + "".join(f'option{j} = "value-{i}-{j}"\n' for j in range(5))
    for i in range(8)
)

FLOOR = """
import anyio, orjson, tomllib
async def main():
    with open("settings.toml", "rb") as f:
        return tomllib.load(f)["app"]["name"]
print(anyio.run(main))
"""

AIOCONFIG = """
import anyio
from aioconfig import load
from aioconfig.sources import File
async def main():
    async with load(File("settings.toml")%s) as config:
        return config["app.name"]
print(anyio.run(main))
"""

DYNACONF = """
import sys
sys.modules["flask"] = None  # as where Flask is not installed: see the module's docstring
from dynaconf import Dynaconf
settings = Dynaconf(settings_files=["settings.toml"])
print(settings.app.name)
"""

PYDANTIC_SETTINGS = """
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource
class App(BaseModel):
    name: str
    debug: bool = False
class Settings(BaseSettings):
    model_config = SettingsConfigDict(toml_file="settings.toml", extra="ignore")
    app: App
    @classmethod
    def settings_customise_sources(cls, settings_cls, *args, **kwargs):
        return (TomlConfigSettingsSource(settings_cls),)
print(Settings().app.name)
"""

SUBJECTS: dict[str, list[str]] = {
    "python": ["-c", "print('billing')"],
    "floor": ["-c", FLOOR],
    "aioconfig": ["-c", AIOCONFIG % ""],
    "aioconfig manual": ["-c", AIOCONFIG % ', mode="manual"'],
    "dynaconf": ["-c", DYNACONF],
    "dynaconf, Flask installed": ["-c", DYNACONF.replace("sys.modules", "# sys.modules")],
    "pydantic-settings": ["-c", PYDANTIC_SETTINGS],
    "aioconfig get": ["-m", "aioconfig", "-s", "settings.toml", "get", "app.name"],
}


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


def run_once(args: list[str], cwd: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, peak RSS MiB) of one new process; its output must be the key's value."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    out = child.stdout.read() if child.stdout else b""
    err = child.stderr.read() if child.stderr else b""
    if child.stdout:
        child.stdout.close()
    if child.stderr:
        child.stderr.close()
    if child.returncode != 0 or out.strip() != b"billing":
        raise SystemExit(f"{args!r} failed ({child.returncode}): {out!r} {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    names = list(SUBJECTS)
    results = {name: Samples() for name in names}
    with tempfile.TemporaryDirectory() as cwd:
        with open(os.path.join(cwd, "settings.toml"), "w", encoding="utf-8") as f:
            f.write(SETTINGS)
        for name in names:  # warm-up: byte-code written, page cache warm
            run_once(SUBJECTS[name], cwd, env)
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                wall, rss = run_once(SUBJECTS[name], cwd, env)
                results[name].wall_ms.append(wall)
                results[name].rss_mib.append(rss)

    def median(name: str) -> float:
        return statistics.median(results[name].wall_ms)

    dynaconf = median("dynaconf")
    rows = [
        (
            name,
            f"{median(name):.1f}",
            f"{min(results[name].wall_ms):.1f}",
            f"{statistics.median(results[name].rss_mib):.1f}",
            f"{median(name) / dynaconf:.2f}x",
        )
        for name in names
    ]
    print(f"## Cold start: load settings.toml and read one key ({rounds} rounds)\n")
    print(f"Machine: {machine()}\n")
    headers = ("process", "median ms", "best ms", "peak RSS MiB", "vs dynaconf")
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
