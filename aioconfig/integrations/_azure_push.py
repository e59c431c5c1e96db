"""Azure App Configuration push: an Event Grid webhook that refreshes a Config at once.

App Configuration publishes ``Microsoft.AppConfiguration.KeyValueModified`` and
``KeyValueDeleted`` events through Event Grid. Each carries a sync token: handed to the
client, it makes the next read see the change even on a replica that has not caught up. This
route answers Event Grid's subscription validation handshake (Event Grid schema, and the
CloudEvents ``OPTIONS`` one), records each event's sync token with the store's
:class:`~aioconfig.sources.AzureAppConfig` source and refreshes the Config before answering.

An event makes the store be checked at once, as the refresh would check it, whatever key it
names: with sentinels (``refresh_on``) only a changed sentinel reloads the selection, as with
the .NET provider's ``ProcessPushNotification``, so filter the subscription on the sentinel
key; without sentinels, every page of the selection is checked (watch-all).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._config import Config

__all__ = ("azure_push_route",)

_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_CHANGES = frozenset(
    {"Microsoft.AppConfiguration.KeyValueModified", "Microsoft.AppConfiguration.KeyValueDeleted"}
)
_MAX_BODY = 1024 * 1024


def azure_push_route(
    config: Config | Callable[[Request], Config] | None = None,
    path: str = "/azure/appconfig/events",
    *,
    secret: str | None = None,
) -> Route:
    """A Starlette (and FastAPI) route for Event Grid deliveries of App Configuration events.

    ``config``: the Config, a function of the request returning it, or None for the one
    ``config_lifespan`` keeps in ``app.state.config``. ``secret``: when given, a delivery must
    carry it as the ``code`` query parameter (put it in the subscription's endpoint URL);
    others get 401. An event only makes the Config ask the store: it never carries data in.
    """

    def config_of(request: Request) -> Config:
        if config is None:
            found: Config = request.app.state.config
            return found
        if isinstance(config, Config):
            return config
        return config(request)

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":  # CloudEvents' validation handshake
            origin = request.headers.get("WebHook-Request-Origin", "*")
            return Response(headers={"WebHook-Allowed-Origin": origin, "Allow": "POST, OPTIONS"})
        if secret is not None and not hmac.compare_digest(
            request.query_params.get("code", "").encode(), secret.encode()
        ):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.body()
        if len(body) > _MAX_BODY:
            return JSONResponse({"error": "too large"}, status_code=413)
        try:
            import json

            events: Any = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return JSONResponse({"error": "expected a list of events"}, status_code=400)
        live = config_of(request)
        changed = 0
        for event in events:
            kind = event.get("eventType", event.get("type"))
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            if kind == _VALIDATION:
                return JSONResponse({"validationResponse": data.get("validationCode")})
            if kind in _CHANGES:
                token = data.get("syncToken")
                _notify(live, event.get("subject"), token if isinstance(token, str) else None)
                changed += 1
        if changed:
            result = await live.refresh(force=True)
            return JSONResponse({"events": changed, "changed": result.changed})
        return JSONResponse({"events": 0, "changed": False})

    return Route(path, endpoint, methods=["POST", "OPTIONS"])


def _notify(config: Config, subject: object, sync_token: str | None) -> None:
    """Tell the store's sources (every Azure source when the subject names no host)."""
    from ..sources._azure import AzureAppConfig

    host = urlsplit(subject).hostname if isinstance(subject, str) else None
    sources = [s for s in config.sources if isinstance(s, AzureAppConfig)]
    matching = [s for s in sources if host is None or urlsplit(s.endpoint).hostname == host]
    for source in matching or sources:
        source.notify(sync_token)
