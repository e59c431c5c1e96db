"""aioconfig.azure.load against azure-appconfiguration-provider 2.5.0, on the same loopback store.

Random stores (prefixes and separators, labels with the null label, JSON and plain values in
many content types, tags, Key Vault references, a snapshot, feature flags with targeting and
percentage allocation) and random ``selects`` / ``trim_prefixes`` / flag selectors: both must
give the same keys and values, and ``featuremanagement.FeatureManager`` the same answers on
both. A fixed seed, and a random one printed with the case count (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import pytest
from azure.appconfiguration.provider import SettingSelector as ProviderSelector
from azure.appconfiguration.provider import load as provider_load
from azure_server import FEATURE_FLAG, FLAG_PREFIX, KEYVAULT_REF, Store, azure_server
from featuremanagement import FeatureManager, TargetingContext

from aioconfig.azure import SettingSelector, WatchKey, load

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FIXED_SEED = 20251204
FIXED_CASES = 200
RANDOM_CASES = 50
USERS = [("alice", ["beta"]), ("bob", []), ("carol", ["ops", "beta"]), ("dave", ["ops"])]
USERS += [(f"user{i}", []) for i in range(8)]

CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.acme.settings+json",
    "text/json",
    "text/plain",
    "application/vnd.microsoft.appconfig.keyvaultref+json",  # no charset: a plain JSON value
]
VALUES = [
    "blue",
    "",
    "42",
    '{"k1": 1, "k2": [1, 2, {"k3": null}]}',
    "[1, 2.5, true]",
    "{not json",
    '{"k1": 1 // a comment\n, "k2": /* two */ 2}',
    "123456789012345678901234567890",
    "null",
    '"quoted"',
    "1e400",
    # aioconfig's tokens, which must stay data (the provider knows none of them)
    "@del",
    "@format {app:color}",
    "@int abc",
    "@none",
    '{"k1": "@del", "k2": ["@merge", "@int 1"], "k3": {"k4": "@format {x}"}}',
    '["@merge", "@json [1]"]',
]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("AZURE_APP_CONFIGURATION_TRACING_DISABLED", "true")


def resolver(uri: str) -> str:
    return f"s3cr3t:{uri}"


def random_flag(rng: random.Random, name: str) -> dict[str, Any]:
    flag: dict[str, Any] = {"id": name, "description": rng.choice([None, "a flag"])}
    if rng.random() < 0.9:
        flag["enabled"] = rng.random() < 0.8
    filters = []
    if rng.random() < 0.6:
        filters.append(
            {
                "name": "Microsoft.Targeting",
                "parameters": {
                    "Audience": {
                        "Users": rng.sample(["alice", "bob", "user3"], rng.randint(0, 2)),
                        "Groups": [
                            {"Name": g, "RolloutPercentage": rng.choice([0, 50, 100])}
                            for g in rng.sample(["beta", "ops"], rng.randint(0, 2))
                        ],
                        "DefaultRolloutPercentage": rng.choice([0, 25, 50, 100]),
                    }
                },
            }
        )
    if filters or rng.random() < 0.5:
        flag["conditions"] = {"client_filters": filters}
        if rng.random() < 0.3:
            flag["conditions"]["requirement_type"] = rng.choice(["Any", "All"])
    if rng.random() < 0.5:
        flag["variants"] = [
            {"name": "Control", "configuration_value": rng.choice(["off", 1, {"k": True}])},
            {"name": "Test", "configuration_value": "on"},
        ]
        split = rng.choice([10, 30, 50, 90])
        flag["allocation"] = {
            "percentile": [
                {"variant": "Control", "from": 0, "to": split},
                {"variant": "Test", "from": split, "to": 100},
            ],
            "default_when_enabled": "Control",
            "default_when_disabled": "Control",
        }
        if rng.random() < 0.5:
            flag["allocation"]["seed"] = rng.choice(["s1", "abc"])
        if rng.random() < 0.5:
            flag["allocation"]["user"] = [{"variant": "Test", "users": ["alice"]}]
    if rng.random() < 0.4:
        flag["telemetry"] = {"enabled": rng.random() < 0.7}
    return flag


def random_store(rng: random.Random, store: Store) -> None:
    store.items.clear()
    store.snapshots.clear()
    for _ in range(rng.randint(3, 40)):
        key = rng.choice(["app", "db", "svc"]) + rng.choice([":", "/"])
        key += rng.choice(["color", "size", "x.y", "timeout", "name", "Secret"])
        if rng.random() < 0.3:
            key += ":" + rng.choice(["a", "b"])
        label = rng.choice([None, None, "dev", "prod"])
        tags = {"env": rng.choice(["a", "b"])} if rng.random() < 0.5 else {}
        if rng.random() < 0.12:
            uri = f"https://vault{rng.randint(1, 2)}.vault.azure.net/secrets/n{rng.randint(1, 3)}"
            if rng.random() < 0.5:
                uri += "/v1"
            store.set(key, json.dumps({"uri": uri}), label, KEYVAULT_REF, tags)
        else:
            store.set(key, rng.choice(VALUES), label, rng.choice(CONTENT_TYPES), tags)
    for i in range(rng.randint(0, 6)):
        name = f"f{i}"
        value = json.dumps(random_flag(rng, name))
        store.set(FLAG_PREFIX + name, value, rng.choice([None, None, "dev"]), FEATURE_FLAG)
    if rng.random() < 0.3:
        store.snapshot("snap1", "app*")


def random_selectors(rng: random.Random, flags: bool = False) -> list[dict[str, Any]] | None:
    if rng.random() < 0.3:
        return None
    chosen = []
    for _ in range(rng.randint(1, 3)):
        if not flags and rng.random() < 0.15:
            chosen.append({"snapshot_name": "snap1"})
            continue
        options: dict[str, Any] = {
            "key_filter": rng.choice(
                ["*", "app*", "app:*", "db/*", "app:color,db/size", "f*", "f1"]
                if flags
                else ["*", "app*", "app:*", "db/*", "app:color,db/size", "svc/x.y*", ".appc*"]
            )
        }
        if rng.random() < 0.6:
            options["label_filter"] = rng.choice(["\0", "dev", "*", "dev,prod", "prod"])
        if rng.random() < 0.2:
            options["tag_filters"] = ["env=a"]
        chosen.append(options)
    if not flags and any("snapshot_name" in s for s in chosen):
        chosen = [s for s in chosen if "snapshot_name" not in s] + [{"snapshot_name": "snap1"}]
    return chosen


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def flag_names(configuration: Any) -> list[str]:
    flags = configuration.get("feature_management", {}).get("feature_flags", [])
    return sorted({flag["id"] for flag in flags})


def answers(manager: Any, names: list[str]) -> list[Any]:
    """Every flag's state and variant for every user (``manager``: a FeatureManager)."""
    out = []
    for name in names:
        for user, groups in USERS:
            context = TargetingContext(user_id=user, groups=groups)
            variant = manager.get_variant(name, context)
            out.append(
                (
                    name,
                    user,
                    manager.is_enabled(name, context),
                    None if variant is None else (variant.name, variant.configuration),
                )
            )
    return out


async def one_case(rng: random.Random, store: Store, connection_string: str) -> int:
    random_store(rng, store)
    selects = random_selectors(rng)
    flag_selects = random_selectors(rng, flags=True)
    trim = rng.sample(["app:", "app", "db/", "svc/x"], rng.randint(0, 3))
    flags_on = rng.random() < 0.7
    if selects is not None and any("snapshot_name" in s for s in selects):
        store.snapshot("snap1", "app*")  # never a missing snapshot: the provider drops all then

    def provider() -> dict[str, Any]:
        extra: dict[str, Any] = {}  # the provider takes selects=None for "no selector"
        if selects is not None:
            extra["selects"] = [ProviderSelector(**s) for s in selects]
        if flag_selects is not None:
            extra["feature_flag_selectors"] = [ProviderSelector(**s) for s in flag_selects]
        loaded = provider_load(
            connection_string=connection_string,
            trim_prefixes=trim,
            feature_flag_enabled=flags_on,
            secret_resolver=resolver,
            **extra,
            replica_discovery_enabled=False,
            startup_timeout=5,
        )
        try:
            names = flag_names(loaded)
            return {"data": plain(dict(loaded)), "answers": answers(FeatureManager(loaded), names)}
        finally:
            loaded.close()

    expected = await anyio.to_thread.run_sync(provider)
    async with load(
        connection_string=connection_string,
        selects=None if selects is None else [SettingSelector(**s) for s in selects],
        trim_prefixes=trim,
        feature_flag_enabled=flags_on,
        feature_flag_selectors=None
        if flag_selects is None
        else [SettingSelector(**s) for s in flag_selects],
        secret_resolver=resolver,
        startup_timeout=5,
    ) as config:
        data = plain({key: config[key] for key in config})
        names = flag_names(config)
        got = {"data": data, "answers": answers(FeatureManager(config), names)}
        # Key Vault values are served as plain strings but their keys are secret.
        for key, value in data.items():
            if isinstance(value, str) and value.startswith("s3cr3t:"):
                assert config.snapshot.is_secret(key)
                assert "s3cr3t" not in repr(config.snapshot)
    assert got == expected, (selects, flag_selects, trim)
    return len(expected["data"])


async def run_cases(seed: int, cases: int) -> None:
    rng = random.Random(seed)
    store = Store(page_size=rng.choice([3, 7, 100]))
    keys = 0
    started = time.perf_counter()
    async with azure_server(store) as server:
        connection_string = store.connection_string(server)
        for _ in range(cases):
            keys += await one_case(rng, store, connection_string)
    print(
        f"\nazure differential: {cases} stores, seed {seed}, {keys} keys compared, "
        f"{time.perf_counter() - started:.1f} s"
    )


async def test_provider_and_aioconfig_agree_fixed_seed() -> None:
    await run_cases(FIXED_SEED, FIXED_CASES)


async def test_provider_and_aioconfig_agree_random_seed() -> None:
    seed = int(os.environ.get("AZURE_DIFF_SEED", random.randrange(2**32)))
    await run_cases(seed, RANDOM_CASES)


# ---------------------------------------------------------------------- refresh scenarios


async def refresh_both(
    store: Store, connection_string: str, change: Any, failures: int = 0, **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load with both, ``change(store)``, wait out the provider's 1 s minimum, refresh both."""
    errors: list[Exception] = []

    def open_provider() -> Any:
        return provider_load(
            connection_string=connection_string,
            refresh_interval=1,
            replica_discovery_enabled=False,
            on_refresh_error=errors.append,
            **{k: v for k, v in options.items() if k != "refresh_on"},
            refresh_on=options.get("refresh_on"),
        )

    provider = await anyio.to_thread.run_sync(open_provider)
    try:
        async with load(
            connection_string=connection_string, refresh_interval=1, mode="manual", **options
        ) as config:
            change(store)
            await anyio.sleep(1.05)
            # The provider's client tries three times (retry_total=2); aioconfig's once.
            store.failures.extend([(503, "0")] * (3 * failures))
            await anyio.to_thread.run_sync(provider.refresh)
            store.failures.extend([(503, "0")] * failures)
            result = await config.refresh(force=True)
            assert (result.error is not None) == bool(failures) == bool(errors)
            return plain(dict(provider)), plain({k: config[k] for k in config})
    finally:
        provider.close()


@pytest.fixture
async def loopback() -> Any:
    store = Store(page_size=2)
    for i in range(5):
        store.set(f"app:k{i}", f"v{i}")
    store.set("sentinel", "1")
    async with azure_server(store) as server:
        yield store, store.connection_string(server)


async def test_a_sentinel_change_reloads_everything(loopback: Any) -> None:
    store, cs = loopback

    def change(s: Store) -> None:
        s.set("app:k1", "new")
        s.set("sentinel", "2")

    ours, theirs = await refresh_both(store, cs, change, refresh_on=[WatchKey("sentinel")])
    assert ours == theirs and ours["app:k1"] == "new"


async def test_a_change_without_the_sentinel_waits(loopback: Any) -> None:
    store, cs = loopback
    ours, theirs = await refresh_both(
        store, cs, lambda s: s.set("app:k1", "new"), refresh_on=[WatchKey("sentinel")]
    )
    assert ours == theirs and ours["app:k1"] == "v1"


async def test_watch_all_sees_a_change_on_any_page(loopback: Any) -> None:
    store, cs = loopback
    ours, theirs = await refresh_both(
        store, cs, lambda s: s.set("app:k4", "new"), refresh_enabled=True
    )
    assert ours == theirs and ours["app:k4"] == "new"


async def test_a_503_during_refresh_keeps_the_last_good_values(loopback: Any) -> None:
    store, cs = loopback

    def change(s: Store) -> None:
        s.set("sentinel", "2")
        s.set("app:k1", "new")

    ours, theirs = await refresh_both(
        store, cs, change, failures=1, refresh_on=[WatchKey("sentinel")]
    )
    assert ours == theirs and ours["app:k1"] == "v1"


async def test_a_flag_change_is_refreshed_as_the_provider_does(loopback: Any) -> None:
    store, cs = loopback
    beta = {"id": "Beta", "enabled": True}
    store.set(FLAG_PREFIX + "Beta", json.dumps(beta), None, FEATURE_FLAG)

    def change(s: Store) -> None:
        s.set(FLAG_PREFIX + "Beta", json.dumps({**beta, "enabled": False}), None, FEATURE_FLAG)
        s.set(FLAG_PREFIX + "New", json.dumps({"id": "New", "enabled": True}), None, FEATURE_FLAG)

    ours, theirs = await refresh_both(
        store, cs, change, feature_flag_enabled=True, feature_flag_refresh_enabled=True
    )
    assert ours == theirs
    flags = {f["id"]: f["enabled"] for f in ours["feature_management"]["feature_flags"]}
    assert flags == {"Beta": False, "New": True}
