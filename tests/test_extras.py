"""A missing optional dependency names the extra that installs it, each checked in a new
interpreter where the dependency is blocked (``sys.modules[name] = None``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (what the user does, the module blocked, what the message must say)
CASES = [
    ("import aioconfig.integrations.starlette", "starlette", "pip install 'aioconfig[starlette]'"),
    ("import aioconfig.integrations.fastapi", "starlette", "pip install 'aioconfig[fastapi]'"),
    ("import aioconfig.integrations.flask", "flask", "pip install 'aioconfig[flask]'"),
    ("import aioconfig.integrations.django", "django", "pip install 'aioconfig[django]'"),
    ("import aioconfig.integrations.litestar", "litestar", "pip install 'aioconfig[litestar]'"),
    ("import aioconfig.flags.openfeature", "openfeature", "pip install 'aioconfig[openfeature]'"),
    (
        "import anyio, aioconfig\nanyio.run(aioconfig.load, aioconfig.sources.File('x.yaml'))",
        "yaml",
        "aioconfig[yaml]",
    ),
    (
        "from aioconfig.azure import load\nload(connection_string='Endpoint=https://x;Id=a;Secret=b')",
        "azure.appconfiguration",
        "AzureAppConfig needs azure-appconfiguration, which is not installed: "
        "pip install 'aioconfig[azure]'",
    ),
    (
        "from aioconfig.sources import AzureAppConfig\n"
        "AzureAppConfig(connection_string='Endpoint=https://x;Id=a;Secret=b')",
        "azure",
        "pip install 'aioconfig[azure]'",
    ),
    (
        "import sys\nfrom aioconfig._cli import main\n"
        "sys.exit(main(['-s', 'x.toml', 'dump', '--format', 'yaml']))",
        "yaml",
        "pip install 'aioconfig[yaml]'",
    ),
]


@pytest.mark.slow
def test_every_optional_import_names_its_extra(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: 1\n")
    (tmp_path / "x.toml").write_text("a = 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", f"import sys\nsys.modules[{blocked!r}] = None\n{code}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for code, blocked, _ in CASES
    ]
    for process, (code, blocked, expected) in zip(processes, CASES, strict=True):
        out, _ = process.communicate(timeout=60)
        assert process.returncode != 0, (code, out)
        assert expected in out, (code, out)
        if code.startswith("import aioconfig.integrations") or "openfeature" in code:
            last = out.strip().splitlines()[-1]
            assert last.startswith("ModuleNotFoundError: aioconfig."), last
            assert f"needs {blocked}, which is not installed" in last
        if "Azure" in code or "azure" in code:  # at once: no retrying for max_init_wait
            last = out.strip().splitlines()[-1]
            assert last.startswith("ModuleNotFoundError: aioconfig.sources.AzureAppConfig"), last


def test_an_error_inside_an_installed_module_is_its_own() -> None:
    from aioconfig._extras import needs

    with pytest.raises(ModuleNotFoundError, match="No module named 'werkzeug_x'"):
        with needs("flask", "flask", by="here"):
            raise ModuleNotFoundError("No module named 'werkzeug_x'", name="werkzeug_x")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'aioconfig\[flask\]'"):
        with needs("flask", "flask", by="here"):
            raise ModuleNotFoundError("No module named 'flask.sessions'", name="flask.sessions")
