"""An audit: distinct secrets planted in every kind of source never come out of any channel.

Each secret string is unique, so a leak names its source. Channels: DEBUG logs, reprs,
exception text, ``RefreshResult``, ``statistics()``, change events, ``history()`` /
``explain()``, the cache file, and every command of the command line (as subprocesses, with
and without ``--debug``). Only ``reveal`` and ``store_secrets`` may show them.

They are planted under secret names (plural and camelCase ones too: ``api_keys``,
``clientSecrets``) and inside values whatever their key: a URL's userinfo, a query parameter
(``?token=``, ``&sig=``), a connection string's field (``Password=``, ``AccountKey=``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from etcd_server import EtcdClient, EtcdCluster, require_etcd
from http_helpers import serve

from aioconfig import FileCache, Secret, Validator, load
from aioconfig._config import Config
from aioconfig._secrets import MASK
from aioconfig.sources import Env, File, Http, Static
from aioconfig.sources._etcd import Etcd

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0

# One distinct string per place it is planted.
JSON_PASSWORD = "S3CR3T-json-password"
JSON_LISTED = "S3CR3T-json-listed"
JSON_URL = "S3CR3T-json-url"
TOML_KEY = "S3CR3T-toml-apikey"
TOML_LISTED = "S3CR3T-toml-listed"
YAML_SECRET = "S3CR3T-yaml-client"
DOTENV_PASSWORD = "S3CR3T-dotenv-smtp"
INI_TOKEN = "S3CR3T-ini-token"
ENV_PASSWORD = "S3CR3T-env-password"
STATIC_WRAPPED = "S3CR3T-static-wrapped"
HTTP_CREDENTIALS = "S3CR3T-http-credentials"
HTTP_URL = "S3CR3T-http-url"
CAST_SECRET = "S3CR3T-cast"
# Plural and camelCase names, and credentials inside values whatever their key (issue 10):
# a query parameter named like a secret, a connection string's secret field.
JSON_QUERY = "S3CR3T-json-query"
JSON_API_KEYS = "S3CR3T-json-apikeys"
JSON_CLIENT_SECRETS = "S3CR3T-json-clientsecrets"
TOML_ACCOUNT_KEY = "S3CR3T-toml-accountkey"
TOML_API_KEYS = "S3CR3T-toml-camel-apikeys"
YAML_SAS = "S3CR3T-yaml-sas-sig"
YAML_PRIVATE_KEYS = "S3CR3T-yaml-privatekeys"
DOTENV_CONNECTION = "S3CR3T-dotenv-connection"
DOTENV_QUERY = "S3CR3T-dotenv-access-token"
INI_SHARED_KEY = "S3CR3T-ini-sharedaccesskey"
INI_APPCONFIG = "S3CR3T-ini-appconfig-secret"
ENV_QUERY = "S3CR3T-env-apikey-query"
ENV_ODBC = "S3CR3T-env-odbc-pwd"
ENV_ACCESS_KEYS = "S3CR3T-env-accesskeys"
HTTP_SIGNING_KEYS = "S3CR3T-http-signingkeys"
HTTP_QUERY = "S3CR3T-http-clientsecret-query"
HTTP_PWD = "S3CR3T-http-pwd"
HTTP_SOURCE_TOKEN = "S3CR3T-http-source-token"
SECRETS = (
    JSON_PASSWORD,
    JSON_LISTED,
    JSON_URL,
    TOML_KEY,
    TOML_LISTED,
    YAML_SECRET,
    DOTENV_PASSWORD,
    INI_TOKEN,
    ENV_PASSWORD,
    STATIC_WRAPPED,
    HTTP_CREDENTIALS,
    HTTP_URL,
    JSON_QUERY,
    JSON_API_KEYS,
    JSON_CLIENT_SECRETS,
    TOML_ACCOUNT_KEY,
    TOML_API_KEYS,
    YAML_SAS,
    YAML_PRIVATE_KEYS,
    DOTENV_CONNECTION,
    DOTENV_QUERY,
    INI_SHARED_KEY,
    INI_APPCONFIG,
    ENV_QUERY,
    ENV_ODBC,
    ENV_ACCESS_KEYS,
    HTTP_SIGNING_KEYS,
    HTTP_QUERY,
    HTTP_PWD,
    HTTP_SOURCE_TOKEN,
)
# Only a part of a string is secret in a URL's userinfo: the test looks for the whole string,
# which is the password alone.

HTTP_DOCUMENT = {
    "http": {
        "credentials": HTTP_CREDENTIALS,
        "mirror": f"https://mirror:{HTTP_URL}@m.example/",
        "signing_keys": [HTTP_SIGNING_KEYS],
        "callback": f"https://cb.example/done?state=1&client_secret={HTTP_QUERY}",
        "sql": f"Server=sql.internal;Uid=app;Pwd={HTTP_PWD}",
    }
}
#: The environment of the Env source, in process and on the command line.
AUDIT_ENVIRON = {
    "AUDIT_DB__PASSWORD": ENV_PASSWORD,
    "AUDIT_SEARCH__URL": f"https://search.example/?q=x&api_key={ENV_QUERY}",
    "AUDIT_ODBC": f"Driver={{ODBC 18}};Server=h;UID=app;PWD={{{ENV_ODBC}}}",
    "AUDIT_AWS__ACCESS_KEYS": ENV_ACCESS_KEYS,
}


def write_project(directory: Path) -> list[str]:
    """The files, one per format; their names in layering order."""
    (directory / "a.json").write_text(
        json.dumps(
            {
                "db": {"host": "db.internal", "password": JSON_PASSWORD, "user": "app"},
                "servers": [{"host": "s1", "password": JSON_LISTED}, {"host": "s2"}],
                "urls": {"primary": f"postgres://app:{JSON_URL}@db.internal/app"},
                "dsn": "@format postgres://{db.user}:{db.password}@{db.host}/app",
                "token_ttl": 60,
                "hooks": {"deploy": f"https://hooks.example/d?team=a&token={JSON_QUERY}"},
                "api_keys": [JSON_API_KEYS],
                "oauth2": {"clientSecrets": [JSON_CLIENT_SECRETS], "clientIds": ["x"]},
            }
        )
    )
    (directory / "b.toml").write_text(
        f'[stripe]\napi_key = "{TOML_KEY}"\napiKeys = ["{TOML_API_KEYS}"]\n'
        f'[[stripe.accounts]]\nname = "main"\ntoken = "{TOML_LISTED}"\n'
        f'[storage]\nconnection = "DefaultEndpointsProtocol=https;AccountName=a;'
        f'AccountKey={TOML_ACCOUNT_KEY};EndpointSuffix=core.windows.net"\n'
    )
    (directory / "c.yaml").write_text(
        f"oauth:\n  client_secret: {YAML_SECRET}\n  client_id: x\n"
        f"private_keys: [{YAML_PRIVATE_KEYS}]\n"
        f'blob: "https://a.blob.core.windows.net/c?sv=2020-08-04&sr=c&sig={YAML_SAS}"\n'
    )
    (directory / "d.env").write_text(
        f"SMTP_PASSWORD={DOTENV_PASSWORD}\nSMTP_HOST=mail\n"
        f'DB_CONNECTION="Server=db;User Id=app;Password={DOTENV_CONNECTION};"\n'
        f"SEARCH_URL=https://search.example/?access_token={DOTENV_QUERY}\n"
    )
    (directory / "e.ini").write_text(
        f"[auth]\ntoken = {INI_TOKEN}\nrealm = r\n"
        f"[bus]\nconnection = Endpoint=sb://ns.servicebus.windows.net/;"
        f"SharedAccessKeyName=Root;SharedAccessKey={INI_SHARED_KEY}\n"
        f"[appconfig]\nconnection = Endpoint=https://x.azconfig.io;Id=abc;Secret={INI_APPCONFIG}\n"
    )
    return ["a.json", "b.toml", "c.yaml", "d.env", "e.ini"]


def assert_clean(text: str, where: str, secrets: Iterable[str] = SECRETS) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"{where} shows {leaked}:\n{text}"


@pytest.fixture
async def http_url() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(HTTP_DOCUMENT)

    async with serve(("/config.json", handler)) as server:
        # a token in the source's own URL: it shows in names, logs and errors
        yield f"{server.make_url('/config.json')}?token={HTTP_SOURCE_TOKEN}"


def every_key(config: Config) -> list[str]:
    return list(config.snapshot.keys_flat())


# -- in process --------------------------------------------------------------------------------


async def test_no_channel_shows_a_secret(
    tmp_path: Path, http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioconfig")
    names = write_project(tmp_path)
    cache_path = tmp_path / "cache.json"
    sources = [
        *(File(tmp_path / name) for name in names),
        Env("AUDIT", environ={**AUDIT_ENVIRON, "AUDIT_DB__PORT": "@int 5"}),
        Static({"misc": {"blob": Secret(STATIC_WRAPPED), "plain": "ok"}}),
        Http(http_url),
    ]
    outputs: list[tuple[str, str]] = []
    async with load(*sources, cache=FileCache(cache_path), mode="manual") as config:
        assert config["dsn"] == f"postgres://app:{ENV_PASSWORD}@db.internal/app"  # get: real
        assert config["servers"][0]["password"] == JSON_LISTED
        assert TOML_ACCOUNT_KEY in config["storage.connection"]  # credentials in values: real
        assert config["aws.access_keys"] == ENV_ACCESS_KEYS
        outputs += [("repr(config)", repr(config)), ("repr(snapshot)", repr(config.snapshot))]
        outputs += [(f"repr({source!r})", repr(source)) for source in sources]
        for key in every_key(config):
            outputs.append((f"history({key})", repr(config.history(key))))
            outputs.append((f"explain({key})", config.explain(key)))
        assert config.explain("servers").count(MASK) == 1  # the password in the list

        async with config.changes() as events:
            (tmp_path / "a.json").write_text((tmp_path / "a.json").read_text() + "\n")
            bad = tmp_path / "e.ini"
            sections = bad.read_text().partition("[bus]")[2]
            bad.write_text(f"[auth]\ntoken {INI_TOKEN} with no equals sign\n")
            result = await config.refresh(force=True)
            outputs += [("RefreshResult", repr(result)), ("error", str(result.error))]
            bad.write_text(f"[auth]\ntoken = {INI_TOKEN}-changed\nrealm = r\n[bus]{sections}")
            result = await config.refresh(force=True)
            outputs.append(("RefreshResult", repr(result)))
            with anyio.fail_after(5):
                async for event in events:
                    outputs += [("ChangeEvent", repr(event)), ("event.error", str(event.error))]
                    if event.error is None:
                        break
        outputs.append(("statistics", repr(config.statistics())))

    cached = cache_path.read_text()
    outputs.append(("cache file", cached))
    entry = json.loads(cached)
    assert entry["data"]["token_ttl"] == 60  # not a secret: kept for a start from the cache
    assert "servers[0].password" in entry["omitted"]
    assert "dsn" in entry["omitted"] and "urls.primary" in entry["omitted"]
    for key in ("hooks.deploy", "storage.connection", "blob", "bus.connection", "odbc"):
        assert key in entry["omitted"]  # a value holding credentials stays out of the cache
    for key in ("api_keys", "stripe.apiKeys", "private_keys", "aws.access_keys"):
        assert key in entry["omitted"]
    assert entry["data"]["oauth2"]["clientIds"] == ["x"]

    outputs += [("log", record.getMessage()) for record in caplog.records]
    outputs += [("log traceback", record.exc_text or "") for record in caplog.records]
    for where, text in outputs:
        assert_clean(text, where, [*SECRETS, f"{INI_TOKEN}-changed"])


async def test_error_paths_show_no_secret(tmp_path: Path) -> None:
    async def fails(*sources: Any, **options: Any) -> str:
        with pytest.raises(Exception) as info:
            async with load(*sources, mode="manual", **options):
                pass
        return f"{info.value}\n{info.value!r}"

    data = {
        "db": {"password": JSON_PASSWORD, "user": "app"},
        "servers": [{"token": TOML_LISTED}],
        "storage": {"connection": f"AccountName=a;AccountKey={TOML_ACCOUNT_KEY}"},
        "hooks": [f"https://h.example/?sig={YAML_SAS}"],
        "signingKeys": [HTTP_SIGNING_KEYS],
    }
    texts = [
        await fails(
            Static(data),
            validators=[
                Validator("db.password", len_max=3, eq="nope"),
                Validator("servers", len_eq=5),
                Validator("db", is_type_of=str),
                Validator("db.password", cast=int),
                Validator("storage.connection", len_max=3, eq="x"),
                Validator("hooks", len_eq=5),
                Validator("signingKeys", is_type_of=str),
                Validator("storage", eq=f"Server=h;Password={HTTP_PWD}"),  # an operand
            ],
        ),
        await fails(Static({"db": {"password": f"@int {CAST_SECRET}"}})),
        await fails(Static({"db": {"pin": Secret(f"@int {CAST_SECRET}")}})),
        await fails(Static(data), validate=lambda snapshot: 1 / 0),
        await fails(Static({**data, "dsn": "@int @format {db.password}"})),
        await fails(Static({"conn": f"@int Server=h;Password={CAST_SECRET}"})),
        await fails(Static({"hook": f"@json https://h/?token={CAST_SECRET}"})),
        await fails(Static(data), validate=lambda snapshot: int(snapshot["storage.connection"])),
    ]
    assert "len_max 3" in texts[0]  # the rule's own operand is shown
    assert "storage.connection" in texts[0] and "AccountKey=**********" in texts[0]
    for text in texts:
        assert_clean(text, "exception", [*SECRETS, CAST_SECRET])


async def test_reveal_and_store_secrets_do_show_them(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json", store_secrets=True)
    data = {
        "db": {"password": JSON_PASSWORD},
        "servers": [{"password": JSON_LISTED}],
        "storage": {"connection": f"AccountName=a;AccountKey={TOML_ACCOUNT_KEY}"},
    }
    async with load(Static(data), cache=cache, mode="manual") as config:
        assert JSON_LISTED in repr(config.history("servers", reveal=True))
        assert JSON_PASSWORD in config.explain("db.password", reveal=True)
        assert TOML_ACCOUNT_KEY in config.explain("storage.connection", reveal=True)
        assert TOML_ACCOUNT_KEY not in config.explain("storage.connection")
    cached = await anyio.Path(cache.path).read_text()
    assert JSON_LISTED in cached and TOML_ACCOUNT_KEY in cached


# -- the command line --------------------------------------------------------------------------


def _environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOCONFIG_", "AUDIT_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(AUDIT_ENVIRON)
    return env


async def _run(cwd: Path, args: list[str]) -> tuple[list[str], int, str]:
    with anyio.fail_after(TIMEOUT):
        process = await anyio.run_process(
            [sys.executable, "-m", "aioconfig", *args], cwd=cwd, env=_environ(), check=False
        )
    return args, process.returncode, process.stdout.decode() + process.stderr.decode()


async def _watch(cwd: Path, args: list[str]) -> tuple[list[str], int, str]:
    command = [sys.executable, "-m", "aioconfig", *args]
    async with await anyio.open_process(command, cwd=cwd, env=_environ()) as process:
        assert process.stdout is not None and process.stderr is not None
        seen = b""
        with anyio.fail_after(TIMEOUT):
            while b"watching version" not in seen:
                chunk = await process.stdout.receive()
                seen += chunk
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(TIMEOUT):
            async for chunk in process.stdout:
                seen += chunk
            errors = b"".join([chunk async for chunk in process.stderr])
            code = await process.wait()
    return args, code, (seen + errors).decode()


@pytest.mark.slow
async def test_no_command_shows_a_secret(tmp_path: Path, http_url: str) -> None:
    names = write_project(tmp_path)
    (tmp_path / "checks.toml").write_text(
        '[default]\n"db.password" = { len_max = 3 }\n"servers" = { len_eq = 9 }\n'
        '"dsn" = { eq = "x" }\n"urls.primary" = { eq = "x" }\n'
        '"storage.connection" = { eq = "x" }\n"hooks.deploy" = { len_max = 3 }\n'
        '"odbc" = { eq = "x" }\n"http.callback" = { eq = "x" }\n"api_keys" = { len_eq = 9 }\n'
    )
    sources = [arg for name in names for arg in ("-s", name)]
    sources += ["-s", "env:AUDIT", "-s", http_url]
    keys = ["db.password", "servers", "dsn", "urls.primary", "stripe", "oauth", "SMTP_PASSWORD"]
    keys += ["auth.token", "http.credentials", "http.mirror", "db"]
    keys += ["hooks", "api_keys", "oauth2", "stripe.apiKeys", "storage.connection", "blob"]
    keys += ["private_keys", "DB_CONNECTION", "SEARCH_URL", "bus", "appconfig", "search"]
    keys += ["odbc", "aws", "http.signing_keys", "http.callback", "http.sql", "http"]
    commands: list[list[str]] = []
    for key in keys:
        commands += [[*sources, "get", key], [*sources, "explain", key]]
    for format in ("json", "yaml", "toml"):
        commands.append([*sources, "dump", "--format", format])
    for debug in ([], ["--debug"]):
        commands += [[*sources, *debug, "get", "dsn"], [*sources, *debug, "explain", "servers"]]
        commands.append([*sources, *debug, "dump"])
        commands.append([*sources, *debug, "list"])
        commands.append([*sources, *debug, "validate", "-V", "checks.toml"])
        # a source error: the .ini file broken, quoting its secret line
        commands.append([*sources, "-s", "broken.ini", *debug, "dump"])
    (tmp_path / "broken.ini").write_text(f"[auth]\ntoken {INI_TOKEN} no equals sign\n")
    results: list[tuple[list[str], int, str]] = []
    limit = anyio.CapacityLimiter(8)

    async def run(args: list[str]) -> None:
        async with limit:
            results.append(await _run(tmp_path, args))

    async def watch(args: list[str]) -> None:
        async with limit:
            results.append(await _watch(tmp_path, args))

    async with anyio.create_task_group() as tg:
        for args in commands:
            tg.start_soon(run, args)
        tg.start_soon(watch, [*sources, "watch"])
        tg.start_soon(watch, [*sources, "--debug", "watch"])

    assert len(results) == len(commands) + 2
    for args, code, output in results:
        assert_clean(output, f"aioconfig {' '.join(args[len(sources) :])} (exit {code})")
    revealed = await _run(tmp_path, [*sources, "get", "servers", "--reveal"])
    assert JSON_LISTED in revealed[2]


# -- etcd --------------------------------------------------------------------------------------

ETCD_PASSWORD = "S3CR3T-etcd-password"
ETCD_LISTED = "S3CR3T-etcd-listed"
ETCD_URL = "S3CR3T-etcd-url"
ETCD_CONFLICT = "S3CR3T-etcd-conflict"
ETCD_CONNECTION = "S3CR3T-etcd-connection"
ETCD_SAS = "S3CR3T-etcd-sas"
ETCD_KEYS = "S3CR3T-etcd-signingkeys"
ETCD_SECRETS = (
    ETCD_PASSWORD,
    ETCD_LISTED,
    ETCD_URL,
    ETCD_CONFLICT,
    ETCD_CONNECTION,
    ETCD_SAS,
    ETCD_KEYS,
)


@pytest.mark.slow
async def test_etcd_shows_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    require_etcd()
    caplog.set_level(logging.DEBUG, logger="aioconfig")
    outputs: list[tuple[str, str]] = []
    async with EtcdCluster() as etcd, EtcdClient(etcd.endpoints) as client:
        await client.put("/audit/db/password", ETCD_PASSWORD)
        await client.put("/audit/db/host", "db.internal")
        await client.put("/audit/servers", json.dumps([{"host": "s1", "password": ETCD_LISTED}]))
        await client.put("/audit/mirror", f"https://mirror:{ETCD_URL}@m.example/")
        await client.put("/audit/conn", f"Server=h;User Id=app;Password={ETCD_CONNECTION};")
        await client.put("/audit/blob", f"https://a.blob.core.windows.net/c?sv=1&sig={ETCD_SAS}")
        await client.put("/audit/signingKeys", ETCD_KEYS)
        source = Etcd(etcd.endpoints, prefix="/audit/")
        async with load(source, mode="manual") as config:
            assert config["db.password"] == ETCD_PASSWORD  # get: the real value
            outputs.append(("repr", repr(source) + repr(config) + repr(config.snapshot)))
            for key in every_key(config):
                outputs.append((f"history({key})", repr(config.history(key))))
                outputs.append((f"explain({key})", config.explain(key)))
            await client.put("/audit/db", ETCD_CONFLICT)  # a value where a section is
            result = await config.refresh(force=True)
            assert result.error is not None
            outputs += [("RefreshResult", repr(result)), ("error", str(result.error))]
            outputs.append(("statistics", repr(config.statistics())))
        url = f"etcd://{etcd.endpoints[0].removeprefix('http://')}/audit/"
        await client.delete("/audit/db")
        cwd = Path.cwd()
        for args in (
            ["get", "db.password"],
            ["explain", "servers"],
            ["dump"],
            ["explain", "mirror"],
            ["get", "conn"],
            ["explain", "blob"],
            ["list"],
        ):
            outputs.append((" ".join(args), (await _run(cwd, ["-s", url, *args]))[2]))
    outputs += [("log", record.getMessage()) for record in caplog.records]
    for where, text in outputs:
        assert_clean(text, where, ETCD_SECRETS)
