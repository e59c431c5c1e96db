"""Ops routes for Starlette: health probes, the values and their origins, a key's history, the
flags for a user, and a forced refresh. Opt-in; never a secret, whatever the query.

```python
from starlette.routing import Mount

routes = [Mount("/ops", routes=ops_routes(refresh_auth=os.environ["OPS_TOKEN"]))]
```

============================ ==================================================================
``GET /health/live``         liveness: 503 only when the Config's background work died (a
                             restart is the cure), else 200
``GET /health/ready``        readiness: 200 serving (``ok``, or ``degraded`` with the reasons:
``GET /health``              ``degraded_status`` to say otherwise), 503 starting or closed
``GET /values``              every key: its value (secrets masked) and where it comes from;
                             ``?prefix=db`` for one section
``GET /history/{key}``       every layer that sets ``key``, newest first (``config.history``)
``GET /flags``               every flag's value for the user in the query
                             (``?identifier=42&email=...&country=...&plan=pro``)
``POST /refresh``            ``config.refresh(force=True)``; refused unless ``refresh_auth``
============================ ==================================================================

The handlers adapt what the Config already says (``health()``, ``history()``,
``get_all_values()``); secrets are masked the way the command line masks them, and nothing is
ever revealed: there is no query for it.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._config import Config, ConfigStatus
from .._exceptions import ClosedError, ConfigError
from .._secrets import mask_urls, masked
from .._snapshot import Snapshot
from ..flags._user import User

__all__ = ("Authorization", "ops_routes")

#: A bearer token, or a check of the request (sync or async) that says whether it may proceed.
Authorization = str | Callable[[Request], "bool | Awaitable[bool]"]

_USER_FIELDS = ("identifier", "email", "country")
_HEADERS = {"cache-control": "no-store"}


def ops_routes(
    config: Config | None = None,
    *,
    state_key: str = "config",
    failing_after: float = 60.0,
    degraded_status: int = 200,
    read_auth: Authorization | None = None,
    refresh_auth: Authorization | None = None,
) -> list[BaseRoute]:
    """The ops routes, to mount where operators reach them: ``Mount("/ops", routes=...)``.

    ``config``: the Config to show; by default the one :func:`config_lifespan` put in
    ``request.state.<state_key>``. ``failing_after``: how many seconds a source may fail before
    the Config counts as degraded. ``degraded_status``: readiness's status code while degraded
    (200: keep serving the last good configuration; 503 takes the replica out of its Service).

    ``read_auth`` guards ``/values``, ``/history`` and ``/flags`` (default: open, so mount them
    where only operators reach); ``refresh_auth`` guards ``POST /refresh``, which is refused
    without one. Each is a bearer token (compared in constant time) or a callable taking the
    ``Request`` and returning (or awaiting to) True to let it through. The health probes are
    never guarded: a kubelet has no token.
    """
    if failing_after < 0 or not math.isfinite(failing_after):
        raise ValueError(f"failing_after must be a number of seconds >= 0, got {failing_after!r}")
    if not 200 <= degraded_status <= 599:
        raise ValueError(f"degraded_status must be an HTTP status, got {degraded_status!r}")
    for name, auth in (("read_auth", read_auth), ("refresh_auth", refresh_auth)):
        if isinstance(auth, str) and not auth:
            raise ValueError(f"{name} must not be an empty token")
        if auth is not None and not isinstance(auth, str) and not callable(auth):
            raise TypeError(f"{name} must be a token or a callable, got {type(auth).__name__}")
    ops = _Ops(config, state_key, failing_after, degraded_status, read_auth, refresh_auth)
    return [
        Route("/health/live", ops.live, methods=["GET"]),
        Route("/health/ready", ops.ready, methods=["GET"]),
        Route("/health", ops.ready, methods=["GET"]),
        Route("/values", ops.values, methods=["GET"]),
        Route("/history/{key:path}", ops.history, methods=["GET"]),
        Route("/flags", ops.flags, methods=["GET"]),
        Route("/refresh", ops.refresh, methods=["POST"]),
    ]


class _Ops:
    def __init__(
        self,
        config: Config | None,
        state_key: str,
        failing_after: float,
        degraded_status: int,
        read_auth: Authorization | None,
        refresh_auth: Authorization | None,
    ) -> None:
        self._config = config
        self._state_key = state_key
        self._failing_after = failing_after
        self._degraded_status = degraded_status
        self._read_auth = read_auth
        self._refresh_auth = refresh_auth

    def _find(self, request: Request) -> Config:
        if self._config is not None:
            return self._config
        from .starlette import _find_config  # here: starlette.py re-exports this module

        return _find_config(request.scope, self._state_key)

    def _health(self, request: Request) -> Health | Response:
        try:
            config = self._find(request)
        except ConfigError as exc:  # no Config (yet): not ready, and saying why
            return _json({"status": "starting", "reasons": [described(exc)]}, 503)
        return judge(config.status(), failing_after=self._failing_after)

    # -- health ------------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        health = self._health(request)
        if isinstance(health, Response):
            return _json({"status": "starting"}, 200)  # not dead: the app is still starting
        # Only a Config whose background work died needs the restart a failed probe brings.
        return _json({"status": health.status}, 503 if health.status == "failed" else 200)

    async def ready(self, request: Request) -> Response:
        health = self._health(request)
        if isinstance(health, Response):
            return health
        if health.status == "ok":
            code = 200
        elif health.status == "degraded":
            code = self._degraded_status
        else:
            code = 503
        return _json(health.body(), code)

    # -- reading -----------------------------------------------------------------------------

    async def values(self, request: Request) -> Response:
        refused = await _refused(self._read_auth, request, what="reading")
        if refused is not None:
            return refused
        prefix = request.query_params.get("prefix", "")
        try:
            config = self._find(request)
            snapshot = config.snapshot
            values: dict[str, Any] = {}
            for key in _leaves(snapshot, prefix):
                serving = next((e for e in config.history(key) if e.serving), None)
                values[key] = {
                    "value": masked(snapshot[key], snapshot.is_secret, key),
                    "origin": None if serving is None else _origin(serving),
                }
        except ConfigError as exc:
            return _unavailable(exc)
        return _json(
            {"version": snapshot.version, "from_cache": snapshot.from_cache, "values": values}
        )

    async def history(self, request: Request) -> Response:
        refused = await _refused(self._read_auth, request, what="reading")
        if refused is not None:
            return refused
        key: str = request.path_params["key"]
        try:
            config = self._find(request)
            snapshot = config.snapshot
            entries = config.history(key)
        except ConfigError as exc:
            return _unavailable(exc)
        if not entries:
            close = difflib.get_close_matches(key, list(snapshot.keys_flat()), n=3, cutoff=0.6)
            body: dict[str, Any] = {"error": f"no configuration key {key!r}"}
            if close:
                body["did_you_mean"] = close
            return _json(body, 404)
        return _json(
            {
                "key": key,
                "version": snapshot.version,
                "history": [
                    {
                        # masked by history() already; masked again should that ever change
                        "value": masked(entry.value, snapshot.is_secret, key),
                        **_origin(entry),
                        "serving": entry.serving,
                    }
                    for entry in entries
                ],
            }
        )

    async def flags(self, request: Request) -> Response:
        refused = await _refused(self._read_auth, request, what="reading")
        if refused is not None:
            return refused
        query = request.query_params
        user = None
        if query:
            custom = {name: value for name, value in query.items() if name not in _USER_FIELDS}
            user = User(
                query.get("identifier", ""),
                email=query.get("email"),
                country=query.get("country"),
                custom=custom,
            )
        try:
            snapshot = self._find(request).snapshot
        except ConfigError as exc:
            return _unavailable(exc)
        values = snapshot.get_all_values(user)
        # The user is not echoed: its attributes are the caller's, and may be anything.
        return _json(
            {
                "version": snapshot.version,
                "user": "default" if user is None else "from the query",
                "values": {k: masked(v, snapshot.is_secret, k) for k, v in values.items()},
            }
        )

    # -- acting ------------------------------------------------------------------------------

    async def refresh(self, request: Request) -> Response:
        if self._refresh_auth is None:
            return _json(
                {"error": "forced refresh is off: the app passes ops_routes(refresh_auth=...)"},
                403,
            )
        refused = await _refused(self._refresh_auth, request, what="a forced refresh")
        if refused is not None:
            return refused
        try:
            result = await self._find(request).refresh(force=True)
        except ConfigError as exc:
            return _unavailable(exc)
        body = {
            "changed": result.changed,
            "keys": sorted(result.keys),
            "flags": sorted(result.flags),
            "version": None if result.snapshot is None else result.snapshot.version,
            "error": None if result.error is None else described(result.error),
        }
        return _json(body, 200 if result.error is None else 502)


# -- helpers ---------------------------------------------------------------------------------


async def _refused(auth: Authorization | None, request: Request, *, what: str) -> Response | None:
    """None when ``request`` may proceed; else the refusal (401 for a token, 403 for a check)."""
    if auth is None:
        return None
    if isinstance(auth, str):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Digests of both: compare_digest takes as long whatever the tokens' lengths.
        expected = hashlib.sha256(auth.encode()).digest()
        offered = hashlib.sha256(given.strip().encode()).digest()
        if scheme.lower() == "bearer" and hmac.compare_digest(offered, expected):
            return None
        return _json(
            {"error": f"{what} needs a valid bearer token"},
            401,
            headers={"www-authenticate": 'Bearer realm="aioconfig"'},
        )
    outcome = auth(request)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if outcome is True:
        return None
    return _json({"error": f"{what} is not authorized"}, 403)


def _leaves(snapshot: Snapshot, prefix: str) -> list[str]:
    """The keys holding values (not sections), under ``prefix`` if given, in source order."""
    below = prefix + "."
    return [
        key
        for key in snapshot.keys_flat()
        if (not prefix or key == prefix or key.startswith(below))
        and not (isinstance(value := snapshot.get(key), Mapping) and value)
    ]


def _origin(entry: Any) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "source": entry.source,
        "origin": entry.origin,
        "since": entry.version,
    }


@dataclass(frozen=True, slots=True)
class Health:
    """What the health routes answer: a status, the reasons for it, and the sources' status."""

    status: str  # starting, ok, degraded, closed, failed
    reasons: tuple[str, ...]
    of: ConfigStatus

    def body(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.of.version,
            "from_cache": self.of.from_cache,
            "reasons": list(self.reasons),
            "sources": [
                {
                    "name": source.name,
                    "answered_ago": _rounded(source.answered),
                    "failing_for": _rounded(source.failing),
                    "failures": source.failures,
                    "error": None if source.error is None else mask_urls(source.error),
                    "watching": source.watching,
                }
                for source in self.of.sources
            ],
        }


def judge(status: ConfigStatus, *, failing_after: float) -> Health:
    """``starting`` before the first load, ``closed`` after ``aclose()``, ``failed`` when the
    background work died; else ``degraded`` while serving the cached configuration or while a
    source has failed for ``failing_after`` seconds or more, and ``ok`` otherwise."""
    state = status.state
    if state in ("unopened", "opening"):
        return Health("starting", ("the first load has not finished",), status)
    if state == "closed":
        return Health("closed", ("the Config is closed",), status)
    if state == "failed":
        return Health("failed", ("the Config's background work failed",), status)
    reasons = []
    if status.from_cache:
        reasons.append(
            "serving the last good configuration from the cache: "
            "the sources have not all answered since start-up"
        )
    for source in status.sources:
        if source.failing is not None and source.failing >= failing_after:
            many = "failure" if source.failures == 1 else "failures"
            # The error names its source already ("etcd://10.0.0.1:2379/app/: refused").
            said = source.name if source.error is None else mask_urls(source.error)
            reasons.append(f"{said} (failing for {source.failing:.1f}s, {source.failures} {many})")
    return Health("degraded" if reasons else "ok", tuple(reasons), status)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def described(error: BaseException) -> str:
    """An error as the routes show it: aioconfig's own messages (they hold no values), any
    other exception by its type only (its text may quote anything); URL credentials masked."""
    if isinstance(error, ConfigError):
        return mask_urls(str(error))
    return type(error).__name__


def _unavailable(exc: ConfigError) -> Response:
    code = 503 if isinstance(exc, ClosedError) else 500
    return _json({"error": described(exc)}, code)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer past 64 bits
        content = json.dumps(body, default=_default).encode()
    return Response(
        content, status, headers={**_HEADERS, **(headers or {})}, media_type="application/json"
    )


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)
