"""The ``aioconfig`` command line, run as a real subprocess: what it prints, and how it exits."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from anyio.streams.buffered import BufferedByteReceiveStream
from etcd_server import etcd_with
from hypothesis import given
from hypothesis import strategies as st

from aioconfig._cli import NoTomlForm, _parser, parse_source, to_toml
from aioconfig._secrets import MASK, masked
from aioconfig.sources import Env, Etcd, File, Http

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0  # for any one command: a hung one fails the test instead of hanging the suite

SETTINGS = """\
name = "inventory"

[db]
host = "localhost"
port = 5432
password = "hunter2"

[db.pool]
max_size = 10

[feature]
beta_users = ["alice", "bob"]
servers = [{ host = "a", token = "t0k3n" }, { host = "b", weight = 2 }]
"""
MASKED: dict[str, Any] = {
    "name": "inventory",
    "db": {"host": "localhost", "port": 5432, "password": MASK, "pool": {"max_size": 10}},
    "feature": {
        "beta_users": ["alice", "bob"],
        "servers": [{"host": "a", "token": MASK}, {"host": "b", "weight": 2}],
    },
}
SECTIONS = """\
[default.db]
host = "localhost"
port = 5432

[production.db]
host = "db.prod"
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def one_line_error(self, code: int) -> str:
        """The one ``aioconfig: ...`` line on stderr, after checking the exit and no traceback."""
        assert self.code == code, self
        assert "Traceback" not in self.err
        assert self.out == ""
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("aioconfig: "), self.err
        return lines[0]


def environ(extra: Mapping[str, str] | None = None, path: Sequence[Path] = ()) -> dict[str, str]:
    """This environment without any AIOCONFIG_/MYAPP_ variables, and aioconfig importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOCONFIG_", "MYAPP_"))}
    env.pop("NO_COLOR", None)
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*path, ROOT]))
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aioconfig", *args]


def cli_all(
    cwd: Path,
    *commands: Sequence[str],
    env: Mapping[str, str] | None = None,
    path: Sequence[Path] = (),
) -> list[Result]:
    """Run several commands at once (each is mostly interpreter start-up) and collect them."""
    processes = [
        subprocess.Popen(
            command(*args),
            cwd=cwd,
            env=environ(env, path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            results.append(Result(process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def cli(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    return cli_all(cwd, args, env=env)[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "settings.toml").write_text(SETTINGS)
    return tmp_path


# -- get ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_get_prints_strings_as_they_are_and_the_rest_as_json(project: Path) -> None:
    name, port, db, users, default = cli_all(
        project,
        ["get", "name"],
        ["-s", "settings.toml", "get", "db.port"],
        ["get", "db"],
        ["get", "feature.beta_users"],
        ["get", "db.pool.max_size"],
    )
    assert (name.code, name.out, name.err) == (0, "inventory\n", "")
    assert port.out == "5432\n"
    assert json.loads(db.out) == MASKED["db"]
    assert json.loads(users.out) == ["alice", "bob"]
    assert default.out == "10\n"  # no -s: ./settings.toml


@pytest.mark.slow
def test_get_masks_secrets_unless_revealed(project: Path) -> None:
    secret, revealed, servers, shown = cli_all(
        project,
        ["get", "db.password"],
        ["get", "db.password", "--reveal"],
        ["get", "feature.servers"],
        ["get", "--reveal", "feature.servers"],
    )
    assert secret.out == f"{MASK}\n"
    assert revealed.out == "hunter2\n"
    assert json.loads(servers.out) == MASKED["feature"]["servers"]
    assert "t0k3n" not in servers.out
    assert json.loads(shown.out)[0]["token"] == "t0k3n"


@pytest.mark.slow
def test_get_of_a_missing_key_exits_1(project: Path) -> None:
    result = cli(project, "get", "db.nope")
    assert result.one_line_error(1) == "aioconfig: no configuration key 'db.nope'"


# -- dump --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dump_in_every_format(project: Path) -> None:
    (project / "extra.toml").write_text(
        "[misc]\nlimit = inf\nat = 2024-05-01T12:00:00Z\nday = 2024-05-01\n"
        '"odd key" = "a\\"b\\\\c"\n'
    )
    both = ["-s", "settings.toml", "-s", "extra.toml"]
    as_json, revealed, as_toml, toml_revealed, as_yaml, in_order = cli_all(
        project,
        ["dump"],
        ["dump", "--reveal"],
        ["dump", "--format", "toml"],
        [*both, "dump", "--format", "toml", "--reveal"],
        ["dump", "-f", "yaml"],
        ["dump", "--sort-keys"],
    )
    original = tomllib.loads(SETTINGS)
    assert json.loads(as_json.out) == MASKED
    assert as_json.out.startswith('{\n  "name": "inventory",\n  "db": {\n')  # pretty, in order
    assert json.loads(revealed.out) == original
    assert tomllib.loads(as_toml.out) == MASKED
    assert tomllib.loads(toml_revealed.out) == original | tomllib.loads(
        (project / "extra.toml").read_text()
    )
    assert yaml.safe_load(as_yaml.out) == MASKED
    assert list(json.loads(in_order.out)) == ["db", "feature", "name"]
    assert "hunter2" not in as_json.out + as_toml.out + as_yaml.out
    for result in (as_json, revealed, as_toml, toml_revealed, as_yaml, in_order):
        assert (result.code, result.err) == (0, "")


@pytest.mark.slow
def test_dump_says_what_a_format_cannot_hold(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("a: null\nb: [1, null]\nc: .inf\nd: x\n")
    as_toml, as_json = cli_all(
        tmp_path, ["-s", "data.yaml", "dump", "-f", "toml"], ["-s", "data.yaml", "dump"]
    )
    assert as_toml.code == 0
    assert tomllib.loads(as_toml.out) == {"b": [1], "c": math.inf, "d": "x"}
    assert as_toml.err == "aioconfig: warning: TOML has no null; left out: a, b[1]\n"
    assert as_json.code == 0
    assert json.loads(as_json.out) == {"a": None, "b": [1, None], "c": None, "d": "x"}
    assert as_json.err.startswith("aioconfig: warning: JSON has no inf or nan")


@pytest.mark.slow
def test_dump_yaml_without_pyyaml_is_a_usage_error(project: Path) -> None:
    stub = project / "stub"
    (stub / "yaml").mkdir(parents=True)
    (stub / "yaml" / "__init__.py").write_text("raise ImportError('No module named yaml')\n")
    result = cli_all(project, ["dump", "--format", "yaml"], path=[stub])[0]
    assert result.one_line_error(2).startswith("aioconfig: --format yaml needs PyYAML")


# -- explain -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_explain_shows_the_env_var_over_the_file_section(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(SECTIONS)
    sources = ["-s", "settings.toml", "-s", "env:MYAPP", "--environments"]
    explained, unset = cli_all(
        tmp_path,
        [*sources, "explain", "db.host"],
        [*sources, "explain", "db.user"],
        env={"MYAPP_DB__HOST": "db.from-env"},
    )
    assert explained.code == 0, explained
    lines = explained.out.splitlines()
    assert lines[0] == "db.host (newest first; * serving)"
    row = ["*", "env", "env:MYAPP_*", "MYAPP_DB__HOST", "db.from-env", "v1"]
    assert lines[2].split() == row
    assert lines[3].split() == ["file", "settings.toml", "settings.toml", "[default]", "localhost"]
    assert (unset.code, unset.out) == (1, "db.user: not set by any source\n")


# -- validate ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_validate(project: Path) -> None:
    (project / "aioconfig_validators.toml").write_text(
        '[default]\n"db.port" = { must_exist = true, gte = 1024 }\n"db.host" = { ne = "" }\n'
    )
    (project / "strict.toml").write_text(
        "[default]\n"
        '"db.port" = { lte = 1024 }\n'
        '"db.password" = { len_min = 20 }\n'
        '"db.user" = { must_exist = true }\n'
    )
    passed, failed = cli_all(project, ["validate"], ["validate", "-V", "strict.toml"])
    assert (passed.code, passed.out, passed.err) == (0, "valid: 2 validators passed\n", "")
    assert failed.code == 1 and failed.out == ""
    assert failed.err.splitlines() == [
        "aioconfig: 3 validation failures:",
        "  - db.port must lte 1024 but it is 5432 in env DEVELOPMENT",
        f"  - db.password must len_min 20 but it is {MASK} in env DEVELOPMENT",
        "  - db.user is required in env DEVELOPMENT",
    ]
    assert "hunter2" not in failed.err


@pytest.mark.slow
def test_validate_without_a_validators_file_is_a_usage_error(project: Path) -> None:
    default, named = cli_all(project, ["validate"], ["validate", "-V", "nope.toml"])
    assert "aioconfig_validators.toml" in default.one_line_error(2)
    assert "'nope.toml'" in named.one_line_error(2)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    results = cli_all(
        tmp_path,
        ["frob"],
        ["-s", "ftp://example.com/x", "get", "a"],
        ["-s", "env:", "get", "a"],
        ["-s", "settings.nope", "get", "a"],
        ["-s", "etcd://127.0.0.1:2379", "get", "a"],
        ["get", "a"],  # no -s and no ./settings.toml
        ["-s", "x.toml", "get"],
        ["--timeout", "soon", "-s", "x.toml", "get", "a"],
    )
    messages = [result.one_line_error(2) for result in results]
    assert "invalid choice: 'frob'" in messages[0]
    assert "unknown source 'ftp://example.com/x'" in messages[1]
    assert "source 'env:': prefix must not be empty" in messages[2]
    assert "cannot tell the format of 'settings.nope'" in messages[3]
    assert "etcd needs a prefix" in messages[4]
    assert messages[5].startswith("aioconfig: no sources: pass -s SOURCE")
    assert "required: KEY (see 'aioconfig get --help')" in messages[6]
    assert "--timeout: expected a number of seconds" in messages[7]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_source_errors_exit_2_with_a_traceback_only_under_debug(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('a = 1\nb = "unterminated\n')
    url = f"http://127.0.0.1:{unused_port()}/config.json"
    missing, malformed, debug, refused = cli_all(
        tmp_path,
        ["-s", "missing.toml", "get", "a"],
        ["-s", "bad.toml", "get", "a"],
        ["-s", "bad.toml", "get", "a", "--debug"],
        ["-s", url, "--timeout", "0.2", "dump"],
    )
    looked = tmp_path / "missing.toml"
    expected = f"aioconfig: missing.toml: file not found (looked for {looked})"
    assert missing.one_line_error(2) == expected
    assert malformed.one_line_error(2).startswith("aioconfig: bad.toml:2:")
    assert debug.code == 2
    assert "Traceback" in debug.err and "ParseError" in debug.err
    assert debug.err.splitlines()[-1] == malformed.err.strip()
    assert refused.one_line_error(2) == (
        f"aioconfig: {url}: connection refused (gave up after --timeout 0.2s)"
    )


# -- sources and environments ------------------------------------------------------------------


@pytest.mark.slow
def test_environment_sections_and_env_sources(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(SECTIONS)
    production, from_variable, development, layered, env_only = cli_all(
        tmp_path,
        ["--env", "production", "get", "db.host"],
        ["get", "db.host", "--environments"],
        ["--environments", "get", "db.host", "--env-var", "UNSET_ENV"],
        ["--environments", "-s", "settings.toml", "-s", "env:MYAPP", "get", "db.port"],
        ["-s", "env:MYAPP", "dump"],
        env={"AIOCONFIG_ENV": "production", "MYAPP_DB__PORT": "6432", "MYAPP_NAME": "x"},
    )
    assert production.out == from_variable.out == "db.prod\n"
    assert development.out == "localhost\n"
    assert layered.out == "6432\n"
    assert json.loads(env_only.out) == {"db": {"port": 6432}, "name": "x"}  # typed as in Dynaconf


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_http_source(tmp_path: Path) -> None:
    async def document(request: web.Request) -> web.Response:
        return web.json_response({"db": {"host": "db.from-http", "token": "s3cr3t"}})

    app = web.Application()
    app.router.add_get("/config.json", document)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        url = str(server.make_url("/config.json"))
        with anyio.fail_after(TIMEOUT):
            done = await anyio.run_process(
                command("-s", url, "dump"), cwd=tmp_path, env=environ(), check=False
            )
    finally:
        await server.close()
    assert (done.returncode, done.stderr) == (0, b"")
    assert json.loads(done.stdout) == {"db": {"host": "db.from-http", "token": MASK}}


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_interrupted_command_stops_at_once(tmp_path: Path) -> None:
    asked = anyio.Event()

    async def never(request: web.Request) -> web.Response:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/config.json", never)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        url = str(server.make_url("/config.json"))
        args = command("-s", url, "--timeout", "30", "get", "a")
        with anyio.fail_after(TIMEOUT):
            async with await anyio.open_process(args, cwd=tmp_path, env=environ()) as process:
                try:
                    await asked.wait()  # the command is loading: its signal handler is set
                    process.send_signal(signal.SIGINT)
                    assert await process.wait() == 130
                    assert process.stderr is not None
                    errors = b"".join([chunk async for chunk in process.stderr])
                finally:
                    if process.returncode is None:
                        process.kill()
    finally:
        await server.close()
    assert errors == b""


@pytest.mark.slow
def test_an_etcd_source(tmp_path: Path) -> None:
    keys = {"/myapp/db/host": "db.from-etcd", "/myapp/db/port": "6432", "/other/x": "1"}
    with etcd_with(keys) as etcd:
        hosts = ",".join(endpoint.removeprefix("http://") for endpoint in etcd.endpoints)
        result = cli(tmp_path, "-s", f"etcd://{hosts}/myapp/", "dump")
    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == {"db": {"host": "db.from-etcd", "port": 6432}}


def test_source_specs() -> None:
    env = parse_source("env:MYAPP")
    assert isinstance(env, Env) and env.prefix == "MYAPP_"
    http = parse_source("https://config.internal/app.json")
    assert isinstance(http, Http) and http.name == "https://config.internal/app.json"
    etcd = parse_source("etcd://10.0.0.1:2380,10.0.0.2/myapp/")
    assert isinstance(etcd, Etcd)
    assert etcd.endpoints == ("http://10.0.0.1:2380", "http://10.0.0.2:2379")
    assert etcd.name == "etcd://10.0.0.1:2380/myapp/"
    assert isinstance(parse_source("conf/app.yaml"), File)


# -- watch -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("color", "stop"), [("always", signal.SIGINT), ("never", signal.SIGTERM)])
async def test_watch_prints_changes_until_stopped(
    project: Path, color: str, stop: signal.Signals
) -> None:
    def paint(code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color == "always" else text

    def rewrite(text: str) -> None:  # all at once, as editors save: never half a file
        (project / "next.toml").write_text(text)
        os.replace(project / "next.toml", project / "settings.toml")

    args = command("watch", "--color", color, "--interval", "0.2")
    with anyio.fail_after(TIMEOUT):
        process = await anyio.open_process(args, cwd=project, env=environ())
        async with process:
            try:
                assert process.stdout is not None and process.stderr is not None
                stdout = BufferedByteReceiveStream(process.stdout)

                async def line() -> str:
                    return (await stdout.receive_until(b"\n", 1 << 16)).decode()

                assert await line() == "watching version 1 (Ctrl-C to stop)"
                rewrite(
                    SETTINGS.replace("5432", "5433")
                    .replace("hunter2", "hunter3")
                    .replace('beta_users = ["alice", "bob"]\n', "")
                    .replace("[db.pool]", 'user = "admin"\n\n[db.pool]')
                )
                assert (await line()).startswith("version 2 at ")
                assert [await line() for _ in range(4)] == [
                    paint("36", f"~ db.password: {MASK} -> {MASK}"),
                    paint("36", "~ db.port: 5432 -> 5433"),
                    paint("32", '+ db.user: "admin"'),
                    paint("31", '- feature.beta_users: ["alice","bob"]'),
                ]
                rewrite("name = \n")
                assert await line() == paint(
                    "33",
                    "! refresh failed, still serving version 2: settings.toml:1:8: Invalid value",
                )
                process.send_signal(stop)
                assert await process.wait() == 0
                rest = b"".join([chunk async for chunk in stdout])
                errors = b"".join([chunk async for chunk in process.stderr])
            finally:
                if process.returncode is None:
                    process.kill()
    assert rest == b""
    assert errors == b""  # no traceback, and the failed refresh is not logged twice


# -- TOML --------------------------------------------------------------------------------------


def test_toml_layout() -> None:
    data = {
        "name": "x",
        "db": {"port": 1, "pool": {"max": 2}},
        "servers": [{"host": "a", "tags": ["t"]}],
        "empty": {},
        "only": {"nested": {"deep": True}},
        "odd keys": {"a.b": "tab\there", "": '\x00\x7f"\\ é'},
    }
    text, dropped = to_toml(data)
    assert dropped == []
    assert text == (
        'name = "x"\n'
        'servers = [{host = "a", tags = ["t"]}]\n'
        "\n"
        "[db]\n"
        "port = 1\n"
        "\n"
        "[db.pool]\n"
        "max = 2\n"
        "\n"
        "[empty]\n"
        "\n"
        "[only.nested]\n"
        "deep = true\n"
        "\n"
        '["odd keys"]\n'
        '"a.b" = "tab\\there"\n'
        '"" = "\\u0000\\u007f\\"\\\\ é"\n'
    )
    assert tomllib.loads(text) == data


def test_toml_special_values() -> None:
    data = {
        "floats": [math.inf, -math.inf, -0.0, 1e300, 1e-7],
        "nan": math.nan,
        "when": dt.datetime(
            2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))
        ),
        "local": dt.datetime(2024, 5, 1, 12, 0),
        "day": dt.date(2024, 5, 1),
        "time": dt.time(7, 30, 1),
        "tags": frozenset({"b", "a"}),
        "gone": None,
        "list": [1, None, {"x": None, "y": 2}],
    }
    text, dropped = to_toml(data)
    assert dropped == ["gone", "list[1]", "list[2].x"]
    parsed = tomllib.loads(text)
    assert math.isnan(parsed.pop("nan"))
    expected = {k: v for k, v in data.items() if k not in ("nan", "gone")}
    assert parsed == expected | {"tags": ["a", "b"], "list": [1, {"y": 2}]}
    with pytest.raises(NoTomlForm, match=r"no form for object \(at a\.b\[0\]\)"):
        to_toml({"a": {"b": [object()]}})


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_scalars = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | _text
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
    | st.times()
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: Hypothesis reads a lambda's source to check that it recurses, and on
    # Python 3.10 it cannot find one that spans lines.
    return st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4)


_values = st.recursive(_scalars, _containers, max_leaves=16)


@pytest.mark.slow
@given(st.dictionaries(_text, _values, max_size=6))
def test_toml_round_trips_through_tomllib(data: dict[str, Any]) -> None:
    text, dropped = to_toml(data)
    assert dropped == []
    assert tomllib.loads(text) == data


def test_masked_reaches_into_mappings_and_lists() -> None:
    tree = {"db": {"password": "p", "host": "h"}, "servers": [{"token": "t", "n": 1}], "key": 3}
    assert masked(tree) == {
        "db": {"password": MASK, "host": "h"},
        "servers": [{"token": MASK, "n": 1}],
        "key": MASK,
    }
    assert masked(tree, lambda key: key == "db.host") == tree | {
        "db": {"password": "p", "host": MASK}
    }


# -- help --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_version_and_help(tmp_path: Path) -> None:
    version, usage = cli_all(tmp_path, ["--version"], ["--help"])
    from aioconfig import __version__

    assert (version.code, version.out) == (0, f"aioconfig {__version__}\n")
    assert usage.code == 0
    assert "aioconfig -s settings.toml -s env:MYAPP get db.host" in usage.out


def test_every_command_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("get", "dump", "explain", "validate", "watch"):
        with pytest.raises(SystemExit):
            _parser().parse_args([name, "--help"])
        assert "\nexamples:\n  aioconfig" in capsys.readouterr().out, name
