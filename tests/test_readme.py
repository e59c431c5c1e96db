"""Every Python example in README.md runs, as written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from etcd_server import etcd_with

ROOT = Path(__file__).resolve().parent.parent
IN_EXAMPLES = "# Run in examples/\n"
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a reader runs it: in a copy of examples/ if the block says so, else in an empty folder.
    if code.startswith(IN_EXAMPLES):
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        monkeypatch.chdir(tmp_path / "examples")
    else:
        monkeypatch.chdir(tmp_path)
    # A real module, so that what looks itself up in sys.modules (dataclasses) finds it.
    module = types.ModuleType("readme_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, Any] = module.__dict__
    with contextlib.ExitStack() as stack:
        if "Etcd(" in code:  # the etcd example runs against a real etcd of its own
            etcd = stack.enter_context(etcd_with({"/myapp/db/host": "db.from-etcd"}))
            monkeypatch.setenv("ETCD_ENDPOINTS", ",".join(etcd.endpoints))
        # What the example opened with aioconfig.sync (directly, or through Flask) is closed.
        stack.callback(close_sync_configs, namespace)
        exec(compile(code, "README.md", "exec"), namespace)
        app = namespace.get("app")
        if app is not None:  # a web example: serve the requests it shows through it
            # "# GET /path name=value ... -> {json}", or by default the settings example's answer.
            shown = re.findall(r"^# GET (\S+)((?: \S+=\S+)*) -> (.+)$", code, re.MULTILINE)
            requests = [
                (path, dict(h.split("=", 1) for h in headers.split()), json.loads(body))
                for path, headers, body in shown
            ] or [("/", {}, {"version": 1, "db": "localhost"})]
            if hasattr(app, "test_client"):  # Flask
                flask_client = app.test_client()
                for path, headers, expected in requests:
                    assert flask_client.get(path, headers=headers).json == expected, path
            else:
                from starlette.testclient import TestClient

                with TestClient(app) as client:
                    for path, headers, expected in requests:
                        assert client.get(path, headers=headers).json() == expected, path
    printed = capsys.readouterr().out
    # Where an example says what it prints, it prints that.
    for expected in re.findall(r"# prints: (.+)$", code, re.MULTILINE):
        assert expected.rstrip() in printed, (expected, printed)


def close_sync_configs(namespace: dict[str, Any]) -> None:
    from aioconfig.sync import SyncConfig

    app: Any = namespace.get("app")
    if hasattr(app, "test_client"):  # a Flask app
        namespace["_flask_config"] = app.extensions.get("aioconfig")
    for value in list(namespace.values()):
        if type(value) is SyncConfig:  # not isinstance: Django's lazy settings would set up
            value.close()


def test_ci_runs_exactly_the_readme_commands() -> None:
    commands = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert commands is not None
    first, second = commands.group(1).strip().splitlines()
    assert "examples/quickstart.py" in first and "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_command_line_examples_run() -> None:
    block = re.search(r"```console\n(\$ aioconfig.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    runs = re.findall(r"^\$ aioconfig (.+)\n((?:[^$].*\n)*)", block.group(1), re.MULTILINE)
    assert len(runs) >= 4
    for command, shown in runs:
        if " watch" in command:
            continue  # runs until interrupted; tests/test_cli.py covers it
        result = subprocess.run(
            [sys.executable, "-m", "aioconfig", *command.split("#")[0].split()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, (command, result.stderr)
        for line in shown.splitlines():
            assert line in result.stdout, (command, line, result.stdout)


# Blocks fenced ```py need what no test here has (an Azure store and an Entra credential): they
# are compiled, so at least a typo or a renamed import cannot hide in them.
SHOWN_ONLY = re.findall(r"```py\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


@pytest.mark.parametrize("code", SHOWN_ONLY, ids=[f"shown{i}" for i in range(len(SHOWN_ONLY))])
def test_readme_example_that_is_only_shown_compiles_and_its_aioconfig_names_exist(
    code: str,
) -> None:
    compile(code, "README.md", "exec")
    for module, names in re.findall(r"^from (aioconfig[\w.]*) import (.+)$", code, re.MULTILINE):
        imported = __import__(module, fromlist=["_"])
        for name in names.split(","):
            assert hasattr(imported, name.strip()), (module, name)
