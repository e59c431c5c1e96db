"""The ops routes, served by a real uvicorn on 127.0.0.1 and asked with httpx: health probes,
values with their origins, history, flags, a forced refresh and its refusals, and no secret
ever, whatever the query."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from aioconfig import ConfigStatus, FileCache, Secret, SourceStatus, SourceUnavailable, load
from aioconfig.integrations._ops import judge
from aioconfig.integrations.starlette import config_lifespan, ops_routes
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.slow  # each test starts and stops a server

TOKEN = "ops-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRETS = ("hunter2", "s3cret", "k3y-value", "t0k-in-list", "sekrit", "flag-s3cret", "pr1vate")
SETTINGS: dict[str, Any] = {
    "name": "inventory",
    "db": {
        "host": "db.internal",
        "port": 5432,
        "password": "hunter2",
        "url": "postgres://app:s3cret@db.internal/app",
    },
    "api_key": "k3y-value",
    "servers": [{"host": "a", "token": "t0k-in-list"}, {"host": "b"}],
    "plain": Secret("sekrit"),  # secret by value, whatever its name
    "credentials": {"user": "svc", "private": "pr1vate"},  # secret by its section's name
}
FLAGS = {
    "p": {"s": "salt"},
    "f": {
        "newCheckout": {
            "t": 0,
            "v": {"b": False},
            "i": "off",
            "r": [
                {
                    "c": [{"u": {"a": "plan", "c": 0, "l": ["pro"]}}],
                    "s": {"v": {"b": True}, "i": "pro"},
                }
            ],
        },
        "apiKey": {"t": 1, "v": {"s": "flag-s3cret"}, "i": "k"},
        "banner": {"t": 1, "v": {"s": "Welcome!"}, "i": "b"},
    },
}


@contextmanager
def served(app: Starlette) -> Iterator[httpx.Client]:
    """``app`` under a real uvicorn on a free loopback port, in a thread; stopped on exit."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, loop="asyncio", log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/ops", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def app_with(source: MutableSource | None = None, **options: Any) -> Starlette:
    source = source or MutableSource(SETTINGS, flags=FLAGS, name="settings")
    return Starlette(
        routes=[Mount("/ops", routes=ops_routes(**options))],
        lifespan=config_lifespan(source, mode="manual"),
    )


def no_secret_in(response: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in response.text, (secret, response.request.url, response.text)


# -- health ----------------------------------------------------------------------------------


def test_health_is_ok_and_ready_once_the_first_load_is_in() -> None:
    with served(app_with()) as client:
        live, ready, health = (
            client.get("/health/live"),
            client.get("/health/ready"),
            client.get("/health"),
        )
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.headers["cache-control"] == "no-store"
    body = ready.json()
    assert health.json()["status"] == "ok" and health.json().keys() == body.keys()
    assert body["status"] == "ok" and body["reasons"] == []
    assert (body["version"], body["from_cache"]) == (1, False)
    [source] = body["sources"]
    assert source["name"] == "settings" and source["failures"] == 0
    assert source["answered_ago"] >= 0 and source["failing_for"] is None


def test_a_source_failing_past_the_threshold_is_degraded_with_the_reason() -> None:
    source = MutableSource(SETTINGS, name="settings")
    failure = SourceUnavailable("settings", "connection refused to postgres://u:s3cret@h/")
    with served(app_with(source, failing_after=0, refresh_auth=TOKEN)) as client:
        source.fail(failure)
        refreshed = client.post("/refresh", headers=AUTH)
        assert refreshed.status_code == 502  # the refresh failed; the last good one serves
        assert "connection refused" in refreshed.json()["error"]
        ready, live = client.get("/health/ready"), client.get("/health/live")
        source.fail(None)
        assert client.post("/refresh", headers=AUTH).is_success
        healed = client.get("/health/ready")
    assert ready.status_code == 200  # still serving: taken out of the Service only if asked
    body = ready.json()
    assert body["status"] == "degraded"
    [reason] = body["reasons"]
    assert reason.startswith("settings: connection refused to postgres://u:**********@h/")
    assert "(failing for" in reason and "1 failure)" in reason
    assert body["sources"][0]["failures"] == 1
    assert live.json() == {"status": "degraded"} and live.status_code == 200  # no restart
    assert healed.json()["status"] == "ok"
    no_secret_in(ready)
    no_secret_in(refreshed)


@pytest.mark.parametrize(
    ("options", "code", "status"),
    [
        ({"failing_after": 0, "degraded_status": 503}, 503, "degraded"),
        ({"failing_after": 3600}, 200, "ok"),
    ],
    ids=["out-of-service-when-degraded", "not-failing-long-enough"],
)
def test_the_threshold_and_the_degraded_status_are_the_apps(
    options: dict[str, Any], code: int, status: str
) -> None:
    source = MutableSource(SETTINGS, name="settings")
    with served(app_with(source, refresh_auth=TOKEN, **options)) as client:
        source.fail(SourceUnavailable("settings", "connection refused"))
        assert client.post("/refresh", headers=AUTH).status_code == 502
        ready = client.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (code, status)


def test_serving_from_the_cache_is_degraded(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json")
    first = MutableSource(SETTINGS, name="settings")
    app = Starlette(lifespan=config_lifespan(first, mode="manual", cache=cache))
    with served(app):
        pass  # the first good load is written to the cache
    broken = MutableSource(name="settings")
    broken.fail(SourceUnavailable("settings", "connection refused"))
    app = Starlette(
        routes=[Mount("/ops", routes=ops_routes())],
        lifespan=config_lifespan(broken, mode="manual", cache=cache, max_init_wait=0.05),
    )
    with served(app) as client:
        ready = client.get("/health/ready")
        values = client.get("/values")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["from_cache"]) == ("degraded", True)
    assert body["reasons"][0].startswith("serving the last good configuration from the cache")
    assert values.json()["from_cache"] is True
    assert values.json()["values"]["db.host"]["origin"]["kind"] == "cache"
    no_secret_in(values)


def test_a_config_not_open_is_not_ready_but_alive() -> None:
    config = load(MutableSource(SETTINGS), mode="manual")  # never opened
    app = Starlette(routes=[Mount("/ops", routes=ops_routes(config))])
    without = Starlette(routes=[Mount("/ops", routes=ops_routes())])  # no lifespan at all
    with served(app) as client:
        ready, live = client.get("/health/ready"), client.get("/health/live")
    assert (ready.status_code, ready.json()["status"]) == (503, "starting")
    assert (live.status_code, live.json()) == (200, {"status": "starting"})
    with served(without) as client:
        ready, live = client.get("/health/ready"), client.get("/health/live")
    assert ready.status_code == 503 and "config_lifespan(" in ready.json()["reasons"][0]
    assert live.status_code == 200


def test_judge_says_starting_closed_and_failed() -> None:
    source = SourceStatus("s", answered=1.0, failing=None, failures=0, error=None, watching=False)
    for state, status in (
        ("unopened", "starting"),
        ("opening", "starting"),
        ("closed", "closed"),
        ("failed", "failed"),
        ("opened", "ok"),
    ):
        assert judge(ConfigStatus(state, 1, False, (source,)), failing_after=60).status == status


# -- values, history, flags --------------------------------------------------------------------


def test_values_show_every_key_masked_with_its_origin() -> None:
    with served(app_with()) as client:
        response = client.get("/values")
        section = client.get("/values", params={"prefix": "db"})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1 and body["from_cache"] is False
    values = body["values"]
    assert values["db.host"] == {
        "value": "db.internal",
        "origin": {"kind": "mutablesource", "source": "settings", "origin": "settings", "since": 1},
    }
    assert values["db.port"]["value"] == 5432
    assert values["db.password"]["value"] == "**********"
    assert values["db.url"]["value"] == "postgres://app:**********@db.internal/app"
    assert values["api_key"]["value"] == "**********"
    assert values["servers"]["value"] == [{"host": "a", "token": "**********"}, {"host": "b"}]
    assert values["plain"]["value"] == "**********"
    assert values["credentials.user"]["value"] == "**********"
    assert "db" not in values  # sections are not repeated: their keys are there
    assert sorted(section.json()["values"]) == ["db.host", "db.password", "db.port", "db.url"]
    no_secret_in(response)


def test_history_of_a_key_and_a_missing_key() -> None:
    with served(app_with()) as client:
        host = client.get("/history/db.host")
        missing = client.get("/history/db.hots")
    assert host.json() == {
        "key": "db.host",
        "version": 1,
        "history": [
            {
                "value": "db.internal",
                "kind": "mutablesource",
                "source": "settings",
                "origin": "settings",
                "since": 1,
                "serving": True,
            }
        ],
    }
    assert missing.status_code == 404
    assert missing.json()["error"] == "no configuration key 'db.hots'"
    assert missing.json()["did_you_mean"][0] == "db.host"


def test_flags_for_a_user_from_the_query() -> None:
    with served(app_with()) as client:
        default = client.get("/flags")
        pro = client.get("/flags", params={"identifier": "42", "plan": "pro"})
    assert default.json() == {
        "version": 1,
        "user": "default",
        "values": {"newCheckout": False, "apiKey": "**********", "banner": "Welcome!"},
    }
    assert pro.json()["values"]["newCheckout"] is True
    assert pro.json()["user"] == "from the query"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/values", {"prefix": "db.password"}),
        ("/values", {"prefix": "credentials", "reveal": "true"}),
        ("/values", {"prefix": "servers", "reveal": "1"}),
        ("/values", {"prefix": "plain"}),
        ("/history/db.password", {"reveal": "true"}),
        ("/history/db", {}),
        ("/history/db.url", {}),
        ("/history/credentials", {}),
        ("/history/servers", {"reveal": "yes"}),
        ("/history/plain", {}),
        ("/history/api_key", {}),
        ("/flags", {"identifier": "hunter2", "password": "pr1vate", "api_key": "sekrit"}),
        ("/flags", {"reveal": "true", "token": "t0k-in-list"}),
    ],
)
def test_no_secret_whatever_the_query(path: str, params: dict[str, str]) -> None:
    with served(app_with()) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    no_secret_in(response)
    assert "**********" in response.text or path == "/flags"


# -- refresh and its refusals ------------------------------------------------------------------


def test_a_forced_refresh_with_the_token() -> None:
    source = MutableSource(SETTINGS, name="settings")
    with served(app_with(source, refresh_auth=TOKEN)) as client:
        source.set({**SETTINGS, "name": "stock", "db": {**SETTINGS["db"], "password": "hunter3"}})
        response = client.post("/refresh", headers={"Authorization": f"bearer {TOKEN}"})
        after = client.get("/values", params={"prefix": "name"})
    assert response.status_code == 200
    assert response.json() == {
        "changed": True,
        "keys": ["db.password", "name"],
        "flags": [],
        "version": 2,
        "error": None,
    }
    assert after.json()["values"]["name"]["value"] == "stock"
    assert "hunter3" not in response.text + after.text


def test_refresh_is_refused_without_authorization() -> None:
    async def only_admins(request: Request) -> bool:
        return request.headers.get("x-role") == "admin"

    off, by_token, by_check = (
        app_with(),
        app_with(refresh_auth=TOKEN),
        app_with(refresh_auth=only_admins),
    )
    with served(off) as client:
        refused_off = client.post("/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
        wrong_method = client.get("/refresh")
    assert refused_off.status_code == 403
    assert "refresh_auth" in refused_off.json()["error"]
    assert wrong_method.status_code == 405
    with served(by_token) as client:
        tries = [
            client.post("/refresh"),
            client.post("/refresh", headers={"Authorization": "Bearer nope"}),
            client.post("/refresh", headers={"Authorization": f"Bearer {TOKEN}x"}),
            client.post("/refresh", headers={"Authorization": f"Basic {TOKEN}"}),
            client.post("/refresh", headers={"Authorization": TOKEN}),
        ]
        allowed = client.post("/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
    for refused in tries:
        assert refused.status_code == 401, refused.request.headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert allowed.status_code == 200
    with served(by_check) as client:
        refused = client.post("/refresh", headers={"x-role": "guest"})
        allowed = client.post("/refresh", headers={"x-role": "admin"})
    assert refused.status_code == 403 and allowed.status_code == 200


def test_reads_can_be_guarded_and_health_never_is() -> None:
    with served(app_with(read_auth=TOKEN)) as client:
        refused = [client.get(path) for path in ("/values", "/history/name", "/flags")]
        allowed = client.get("/values", headers={"Authorization": f"Bearer {TOKEN}"})
        health = client.get("/health/ready")
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert allowed.status_code == 200 and health.status_code == 200


def test_options_are_checked_at_once() -> None:
    with pytest.raises(ValueError, match="empty token"):
        ops_routes(refresh_auth="")
    with pytest.raises(TypeError, match="a token or a callable"):
        ops_routes(read_auth=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failing_after"):
        ops_routes(failing_after=-1)
    with pytest.raises(ValueError, match="degraded_status"):
        ops_routes(degraded_status=42)
