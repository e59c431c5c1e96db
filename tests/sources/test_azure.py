"""AzureAppConfig and aioconfig.azure, against the loopback App Configuration in azure_server.py.

First the server itself is proved with Microsoft's own clients, sync and aio: a server that only
aioconfig talks to proves nothing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from aiohttp.test_utils import TestServer
from azure.appconfiguration import AzureAppConfigurationClient, ConfigurationSetting
from azure.core import MatchConditions
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure_server import (
    FEATURE_FLAG,
    FLAG_PREFIX,
    KEYVAULT_REF,
    Store,
    azure_server,
    endpoint,
)
from featuremanagement import FeatureManager
from http_helpers import wait_until
from starlette.applications import Starlette

import aioconfig
from aioconfig import SourceError, SourceUnavailable
from aioconfig._frozen import FrozenList
from aioconfig.azure import SettingSelector, WatchKey, load
from aioconfig.integrations.starlette import azure_push_route
from aioconfig.sources import AzureAppConfig
from aioconfig.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served() -> AsyncIterator[tuple[Store, TestServer]]:
    store = Store(page_size=2)
    store.set("app:color", "blue")
    store.set("app:size", "10")
    store.set("app:color", "red", label="prod", tags={"env": "prod"})
    store.set("app:a,b", "comma")
    store.set("app:json", '{"port": 5432}', content_type="application/json")
    store.set("sentinel", "1")
    async with azure_server(store) as server:
        yield store, server


# ---------------------------------------------------------------------- the server, proved


@pytest.mark.slow
async def test_microsofts_sync_client_drives_the_server(served: tuple[Store, TestServer]) -> None:
    store, server = served

    def drive() -> None:
        client = AzureAppConfigurationClient.from_connection_string(
            store.connection_string(server), retry_total=0
        )
        with client:
            every = client.list_configuration_settings(key_filter="app:*")  # any label
            keys = [s.key for s in every]
            assert keys == ["app:a,b", "app:color", "app:color", "app:json", "app:size"]
            prod = client.list_configuration_settings(key_filter="app:*", label_filter="prod")
            assert [(s.key, s.value) for s in prod] == [("app:color", "red")]
            tagged = client.list_configuration_settings(key_filter="*", tags_filter=["env=prod"])
            assert [s.label for s in tagged] == ["prod"]
            either = client.list_configuration_settings(
                key_filter=r"app:a\,b,sentinel", label_filter="\0"
            )
            assert [s.key for s in either] == ["app:a,b", "sentinel"]
            # Paging: two per page; each page's ETag sent back gives 304s, so no page at all.
            pages = client.list_configuration_settings(key_filter="*", label_filter="*").by_page()
            etags = [pages.etag for _ in pages]
            assert len(etags) == 3
            again = client.list_configuration_settings(key_filter="*", label_filter="*")
            assert list(again.by_page(match_conditions=etags)) == []
            # Writes, conditional gets, deletes.
            setting = client.set_configuration_setting(ConfigurationSetting(key="new", value="v"))
            fetched = client.get_configuration_setting("new")
            assert fetched is not None and fetched.value == "v"
            unchanged = client.get_configuration_setting(
                "new", etag=setting.etag, match_condition=MatchConditions.IfModified
            )
            assert unchanged is None
            changed = client.list_configuration_settings(key_filter="*", label_filter="*")
            assert len(list(changed.by_page(match_conditions=etags))) >= 1
            client.delete_configuration_setting("new")
            with pytest.raises(ResourceNotFoundError):
                client.get_configuration_setting("new")
            # Snapshots.
            store.snapshot("snap", "app:*")
            assert client.get_snapshot("snap").composition_type == "key"
            listed = client.list_configuration_settings(snapshot_name="snap")
            assert [s.key for s in listed] == ["app:a,b", "app:color", "app:json", "app:size"]
        wrong = store.connection_string(server).replace(store_secret(), "d3Jvbmc=")
        with AzureAppConfigurationClient.from_connection_string(wrong, retry_total=0) as bad:
            with pytest.raises(ClientAuthenticationError):
                bad.get_configuration_setting("app:color")

    await anyio.to_thread.run_sync(drive)
    assert any(status == 401 for _, _, status in store.requests)
    assert store.sync_tokens_seen  # the client sends back the Sync-Token it was given


def store_secret() -> str:
    from azure_server import SECRET

    return SECRET


async def test_microsofts_aio_client_drives_the_server(served: tuple[Store, TestServer]) -> None:
    from azure.appconfiguration.aio import AzureAppConfigurationClient as AioClient

    store, server = served
    async with AioClient.from_connection_string(
        store.connection_string(server), retry_total=0
    ) as client:
        found = [
            s.key
            async for s in client.list_configuration_settings(
                key_filter="app:c*", label_filter="prod"
            )
        ]
        assert found == ["app:color"]
        setting = await client.get_configuration_setting("sentinel")
        assert setting is not None
        same = await client.get_configuration_setting(
            "sentinel", etag=setting.etag, match_condition=MatchConditions.IfModified
        )
        assert same is None
        pages = client.list_configuration_settings(key_filter="*").by_page()
        etags = [pages.etag async for _ in pages]
        again = client.list_configuration_settings(key_filter="*")
        assert [p async for p in again.by_page(match_conditions=etags)] == []


# ---------------------------------------------------------------------- the source


async def test_load_serves_the_provider_keys_flat(served: tuple[Store, TestServer]) -> None:
    store, server = served
    async with load(connection_string=store.connection_string(server)) as config:
        assert config["app:color"] == "blue"
        assert config["app:json"]["port"] == 5432
        assert "feature_management" not in config


async def test_separator_nests_keys(served: tuple[Store, TestServer]) -> None:
    store, server = served
    source = AzureAppConfig(
        connection_string=store.connection_string(server),
        selects=[SettingSelector(key_filter="app:*")],
        trim_prefixes=["app:"],
        separator=":",
    )
    store.delete("app:a,b")
    store.set("app:db:port", "5432")
    async with aioconfig.load(source) as config:
        assert config["db.port"] == "5432"
        assert config["json.port"] == 5432


async def test_values_starting_with_at_are_data_not_tokens(
    served: tuple[Store, TestServer],
) -> None:
    """The provider serves "@del" as a string; aioconfig's tokens must not touch them."""
    store, server = served
    literal = {
        "app:gone": "@del",
        "app:fmt": "@format {app:color}",
        "app:none": "@none",
        "app:bad": "@int abc",
        "app:merge": "@merge [1]",
        "app:size": "@int 5",
    }
    for key, value in literal.items():
        store.set(key, value)
    document = {"a": "@del", "b": ["@merge", "@int 1"], "c": {"d": "@format {x}"}}
    store.set("app:json", json.dumps(document), content_type="application/json")
    store.set("app:list", '["@merge", "@none"]', content_type="application/json")
    store.set("app:db", json.dumps({"uri": "https://v.vault.azure.net/secrets/s"}), None,
              KEYVAULT_REF)  # fmt: skip
    async with load(
        connection_string=store.connection_string(server), secret_resolver=lambda uri: "@del"
    ) as config:
        for key, value in literal.items():
            assert config[key] == value
        assert json.loads(json.dumps(config["app:json"], default=dict)) == document
        assert list(config["app:list"]) == ["@merge", "@none"]
        assert config["app:db"] == "@del" and config.snapshot.is_secret("app:db")


def test_a_misspelled_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="refresh_intervall"):
        load(connection_string="Endpoint=https://x;Id=a;Secret=b", refresh_intervall=5)
    with pytest.raises(ValueError, match="at least 1 second"):
        load(connection_string="Endpoint=https://x;Id=a;Secret=b", refresh_interval=0.5)
    with pytest.raises(ValueError, match="Endpoint"):
        AzureAppConfig(connection_string="Secret=hunter2")


async def test_key_vault_values_are_served_plain_and_masked(
    served: tuple[Store, TestServer], caplog: pytest.LogCaptureFixture
) -> None:
    store, server = served
    uri = "https://vault.vault.azure.net/secrets/db-password/v7"
    store.set("app:db", json.dumps({"uri": uri}), content_type=KEYVAULT_REF)
    seen: list[str] = []

    async def resolve(where: str) -> str:
        seen.append(where)
        return "hunter2-vault"

    caplog.set_level(logging.DEBUG)
    async with load(
        connection_string=store.connection_string(server), secret_resolver=resolve
    ) as c:
        assert c["app:db"] == "hunter2-vault"
        assert seen == [uri]  # the full URI, version included, as the provider passes it
        assert c.snapshot.is_secret("app:db")
        shown = repr(c.snapshot) + c.explain("app:db") + repr(c.history("app:db"))
        assert "hunter2" not in shown
    assert "hunter2" not in caplog.text


async def test_a_missing_key_vault_sdk_is_a_lasting_error_naming_the_extra(
    served: tuple[Store, TestServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, server = served
    uri = "https://vault.vault.azure.net/secrets/db-password"
    store.set("app:db", json.dumps({"uri": uri}), content_type=KEYVAULT_REF)
    monkeypatch.setitem(sys.modules, "azure.keyvault.secrets.aio", None)  # not installed
    source = AzureAppConfig(
        connection_string=store.connection_string(server), keyvault_credential=object()
    )
    try:
        with pytest.raises(SourceError) as caught:
            await source.load(None)
    finally:
        await source.aclose()
    assert not caught.value.transient
    message = str(caught.value)
    assert "pip install 'aioconfig[azure]'" in message and "'app:db'" in message


async def test_errors_name_the_endpoint_and_selector_never_the_secret(
    served: tuple[Store, TestServer],
) -> None:
    store, server = served
    bad = store.connection_string(server).replace(store_secret(), "d3Jvbmc=")
    source = AzureAppConfig(connection_string=bad, selects=[SettingSelector(key_filter="app:*")])
    try:
        with pytest.raises(SourceError) as caught:
            await source.load(None)
    finally:
        await source.aclose()
    message = str(caught.value)
    assert endpoint(server) in message and "app:*" in message and "401" in message
    assert not caught.value.transient
    assert "d3Jvbmc" not in message + repr(source)


async def test_a_503_with_retry_after_is_transient(served: tuple[Store, TestServer]) -> None:
    store, server = served
    store.failures.append((503, "7"))
    source = AzureAppConfig(connection_string=store.connection_string(server))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            await source.load(None)
        assert caught.value.retry_after == 7
        assert len(store.requests) == 1  # the SDK's own retries are off
    finally:
        await source.aclose()


async def test_a_sentinel_check_costs_one_304(served: tuple[Store, TestServer]) -> None:
    store, server = served
    source = AzureAppConfig(
        connection_string=store.connection_string(server), refresh_on=[WatchKey("sentinel")]
    )
    try:
        first = await source.load(None)
        store.requests.clear()
        again = await source.load(first.token)
        assert type(again).__name__ == "NotModified"
        assert store.requests == [("GET", "/kv/sentinel", 304)]
    finally:
        await source.aclose()


async def test_a_429_on_the_sentinel_is_transient_with_its_retry_after(
    served: tuple[Store, TestServer],
) -> None:
    store, server = served
    source = AzureAppConfig(
        connection_string=store.connection_string(server), refresh_on=[WatchKey("sentinel")]
    )
    try:
        first = await source.load(None)
        store.failures.append((429, "12"))
        with pytest.raises(SourceUnavailable) as caught:
            await source.load(first.token)
        assert caught.value.retry_after == 12
        assert "'sentinel'" in str(caught.value) and "429" in str(caught.value)
        assert store.requests[-1] == ("GET", "/kv/sentinel", 429)
        again = await source.load(first.token)  # still due: nothing was checked
        assert type(again).__name__ == "NotModified"
        assert store.requests[-1] == ("GET", "/kv/sentinel", 304)
    finally:
        await source.aclose()


async def test_on_refresh_success_and_error_as_the_provider_calls_them(
    served: tuple[Store, TestServer],
) -> None:
    """on_refresh_success() only when a refresh found a change; on_refresh_error(exc)."""
    store, server = served
    successes: list[str] = []
    errors: list[Exception] = []

    async def succeeded() -> None:  # a coroutine function works as well as a plain one
        successes.append(config["app:color"])

    async with load(
        connection_string=store.connection_string(server),
        refresh_on=[WatchKey("sentinel")],
        on_refresh_success=succeeded,
        on_refresh_error=errors.append,
        mode="manual",
    ) as config:
        await config.refresh(force=True)  # nothing changed: not called
        store.set("app:color", "green")
        store.set("sentinel", "2")
        await config.refresh(force=True)
        await wait_until(lambda: successes == ["green"])
        store.failures.append((503, None))
        result = await config.refresh(force=True)
        await wait_until(lambda: len(errors) == 1)
        assert errors[0] is result.error and isinstance(errors[0], SourceUnavailable)
        assert successes == ["green"]


@pytest.mark.slow
async def test_startup_timeout_bounds_a_store_that_is_down() -> None:
    store = Store()
    async with azure_server(store) as server:
        cs = store.connection_string(server)
    began = time.monotonic()
    with pytest.raises(aioconfig.InitialLoadError) as caught:
        await load(connection_string=cs, startup_timeout=1)
    took = time.monotonic() - began
    assert took < 6, took  # within the timeout (no attempt is begun past it), not 100 s
    assert cs.split(";")[0].removeprefix("Endpoint=") in str(caught.value)


@pytest.mark.slow
async def test_startup_retries_503s_then_opens(served: tuple[Store, TestServer]) -> None:
    store, server = served
    store.failures.extend([(503, None), (503, "0")])
    async with load(connection_string=store.connection_string(server), startup_timeout=30) as c:
        assert c["app:color"] == "blue"
    assert [status for _, _, status in store.requests[:2]] == [503, 503]


async def test_feature_flags_work_with_feature_manager(served: tuple[Store, TestServer]) -> None:
    store, server = served
    store.set(FLAG_PREFIX + "Beta", json.dumps({"id": "Beta", "enabled": True}), None, FEATURE_FLAG)
    async with load(
        connection_string=store.connection_string(server),
        feature_flag_enabled=True,
        feature_flag_refresh_enabled=True,
        feature_flag_refresh_interval=1,
        refresh_interval=60,
    ) as config:
        flags = config["feature_management"]["feature_flags"]
        assert isinstance(flags, FrozenList) and isinstance(flags, list)
        with pytest.raises(TypeError):
            flags.append({})
        flags[0]["enabled"] = False  # a copy: the snapshot does not change
        assert enabled(config, "Beta")
        store.set(
            FLAG_PREFIX + "Beta", json.dumps({"id": "Beta", "enabled": False}), None, FEATURE_FLAG
        )
        await anyio.sleep(1.01)
        await config.refresh(force=True)  # or the background poll at 1 s (+-10%) saw it
        await wait_until(lambda: not enabled(config, "Beta"))


async def test_a_short_flag_interval_checks_the_sentinel_only_when_due(
    served: tuple[Store, TestServer],
) -> None:
    """Flags every 10 s, settings every 60 s: the sentinel is asked once a minute, not 6 times."""
    store, server = served
    store.set(FLAG_PREFIX + "Beta", json.dumps({"id": "Beta", "enabled": True}), None, FEATURE_FLAG)
    clock = FakeClock()
    async with load(
        connection_string=store.connection_string(server),
        refresh_on=[WatchKey("sentinel")],
        refresh_interval=60,
        feature_flag_enabled=True,
        feature_flag_refresh_enabled=True,
        feature_flag_refresh_interval=10,
        clock=clock,
        jitter=0,  # a poll every 10 s exactly
    ) as config:
        store.requests.clear()

        def asked(path: str) -> int:
            return sum(1 for _, p, _ in store.requests if p == path)

        async def poll() -> None:
            done = config.statistics().refreshes
            await clock.advance(10)
            await wait_until(lambda: config.statistics().refreshes > done)

        for minute in (1, 2):
            for _ in range(6):
                await poll()
            assert asked("/kv/sentinel") == minute
            assert asked("/kv") == 6 * minute  # the flags' page, every poll
        store.set(FLAG_PREFIX + "Beta", json.dumps({"id": "Beta"}), None, FEATURE_FLAG)
        await poll()
        assert asked("/kv/sentinel") == 2
        await wait_until(lambda: not enabled(config, "Beta"))


def enabled(configuration: Any, name: str) -> bool:
    manager: Any = FeatureManager(configuration)  # typed as if a user were always given
    return bool(manager.is_enabled(name))


def test_importing_aioconfig_imports_no_azure() -> None:
    code = (
        "import sys, aioconfig, aioconfig.sources, aioconfig.azure\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'aiohttp')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(aioconfig.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------- push


async def asgi(app: Any, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """One request through the ASGI app, in this event loop; (status, headers, JSON body)."""
    payload = b"" if body is None else json.dumps(body).encode()
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if given:
            await anyio.sleep_forever()
        given = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), json.loads(content) if content else None


async def test_an_event_grid_push_swaps_the_change_in_at_once(
    served: tuple[Store, TestServer],
) -> None:
    store, server = served
    async with load(
        connection_string=store.connection_string(server),
        refresh_on=[WatchKey("sentinel")],
        refresh_interval=3600,
    ) as config:
        app = Starlette(routes=[azure_push_route(config, "/events", secret="s3")])
        handshake = [
            {
                "id": "1",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "code-123"},
            }
        ]
        status, _, answer = await asgi(app, "POST", "/events?code=s3", handshake)
        assert (status, answer) == (200, {"validationResponse": "code-123"})
        status, _, _ = await asgi(app, "POST", "/events?code=wrong", handshake)
        assert status == 401
        status, headers, _ = await asgi(
            app, "OPTIONS", "/events", WebHook_Request_Origin="eventgrid.azure.net"
        )
        assert headers[b"webhook-allowed-origin"] == b"eventgrid.azure.net"

        store.set("app:color", "green")
        store.set("sentinel", "2")
        event = {
            "id": "2",
            "eventType": "Microsoft.AppConfiguration.KeyValueModified",
            "subject": f"{endpoint(server)}/kv/sentinel",
            "data": {
                "key": "sentinel",
                "label": None,
                "etag": "x",
                "syncToken": "pushed=cHVzaA==;sn=999",
            },
        }
        began = time.perf_counter()
        status, _, answer = await asgi(app, "POST", "/events?code=s3", [event])
        took = time.perf_counter() - began
        assert status == 200 and answer["changed"]
        assert config["app:color"] == "green"
        sent = {token for header in store.sync_tokens_seen for token in header.split(",")}
        assert "pushed=cHVzaA==" in sent  # the event's token, sent on with the next reads
        print(f"\nazure push: event to swap in {took * 1000:.1f} ms (polling: half of 3600 s)")


def modified(server: TestServer, key: str) -> dict[str, Any]:
    """An Event Grid KeyValueModified event for ``key``."""
    return {
        "id": key,
        "eventType": "Microsoft.AppConfiguration.KeyValueModified",
        "subject": f"{endpoint(server)}/kv/{key}",
        "data": {"key": key, "label": None, "etag": "x", "syncToken": "t=dA==;sn=9"},
    }


async def test_a_push_keeps_sentinel_semantics(served: tuple[Store, TestServer]) -> None:
    """As the .NET provider's ProcessPushNotification: an event makes the sentinels be checked
    at once; only a changed sentinel reloads. Without sentinels, every page is checked."""
    store, server = served
    cs = store.connection_string(server)
    async with load(
        connection_string=cs, refresh_on=[WatchKey("sentinel")], refresh_interval=3600
    ) as config:
        app = Starlette(routes=[azure_push_route(config, "/events")])
        store.set("app:color", "green")
        store.requests.clear()
        status, _, answer = await asgi(app, "POST", "/events", [modified(server, "app:color")])
        assert status == 200 and not answer["changed"]
        assert config["app:color"] == "blue"
        assert store.requests == [("GET", "/kv/sentinel", 304)]
        store.set("sentinel", "2")
        status, _, answer = await asgi(app, "POST", "/events", [modified(server, "sentinel")])
        assert answer["changed"] and config["app:color"] == "green"
    async with load(connection_string=cs, refresh_interval=3600) as config:  # no sentinel
        app = Starlette(routes=[azure_push_route(config, "/events")])
        store.set("app:color", "cyan")
        status, _, answer = await asgi(app, "POST", "/events", [modified(server, "app:color")])
        assert answer["changed"] and config["app:color"] == "cyan"


async def test_a_refused_connection_is_transient_and_named() -> None:
    store = Store()
    async with azure_server(store) as server:
        cs = store.connection_string(server)
    source = AzureAppConfig(connection_string=cs, selects=[SettingSelector(key_filter="app:*")])
    try:
        with pytest.raises(SourceUnavailable) as caught:
            await source.load(None)
    finally:
        await source.aclose()
    assert caught.value.transient
    assert str(caught.value).endswith("SettingSelector(key_filter='app:*'): cannot connect")


async def test_key_vault_values_stay_out_of_events_and_the_cache(
    served: tuple[Store, TestServer], tmp_path: Path
) -> None:
    store, server = served
    uri = "https://vault.vault.azure.net/secrets/api-token"
    store.set("app:upstream", json.dumps({"uri": uri}), content_type=KEYVAULT_REF)
    values = iter(["first-vault-value", "second-vault-value"])
    cache = tmp_path / "cache.json"
    async with load(
        connection_string=store.connection_string(server),
        secret_resolver=lambda _: next(values),
        refresh_enabled=True,
        cache=aioconfig.FileCache(cache),
        mode="manual",
    ) as config:
        async with config.changes() as events:
            store.set("app:color", "green")
            result = await config.refresh(force=True)
            assert result.changed
            event = await events.__anext__()
            assert "app:color" in event.keys
            shown = repr(event) + repr(result) + repr(event.new)
        assert config["app:upstream"] == "first-vault-value"  # cached by URI, as the provider
    assert "vault-value" not in shown
    assert cache.exists() and "vault-value" not in cache.read_text()


class _TokenCredential:
    """An AsyncTokenCredential, as azure.identity.aio's are."""

    async def get_token(self, *scopes: str, **options: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("entra-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


async def test_a_token_credential_over_http_is_refused_at_once(
    served: tuple[Store, TestServer],
) -> None:
    store, server = served
    with pytest.raises(aioconfig.InitialLoadError, match="needs an https:// endpoint"):
        await load(endpoint(server), _TokenCredential(), startup_timeout=5)
    assert store.requests == []  # the token never left
