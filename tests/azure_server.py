"""A loopback Azure App Configuration: the REST subset Microsoft's clients use.

``GET /kv`` (key, label and tag filters; ``@nextLink`` paging; page ETags and 304s, with the
``Link`` header on a 304 too, which is how the SDK finds the next page), ``GET/PUT/DELETE
/kv/{key}`` (ETags, 304, 404), snapshots, HMAC-SHA256 verification (401 on a bad signature),
``Sync-Token`` headers, and 429/503 with ``Retry-After`` on demand. tests/sources/test_azure.py
proves it with Microsoft's own clients.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer

CREDENTIAL_ID = "loopback-id"
SECRET = base64.b64encode(b"loopback-secret-bytes-0123456789").decode()
KEYVAULT_REF = "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"
FEATURE_FLAG = "application/vnd.microsoft.appconfig.ff+json;charset=utf-8"
FLAG_PREFIX = ".appconfig.featureflag/"


@dataclass
class Item:
    key: str
    label: str | None
    value: str | None
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    etag: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "key": self.key,
            "label": self.label,
            "content_type": self.content_type,
            "value": self.value,
            "tags": self.tags,
            "locked": False,
            "last_modified": "2025-12-04T12:00:00+00:00",
        }


def _alternatives(spec: str) -> list[str]:
    """A filter's comma-separated alternatives, ``\\,`` and ``\\*`` and ``\\\\`` kept escaped."""
    out, current, i = [], "", 0
    while i < len(spec):
        c = spec[i]
        if c == "\\" and i + 1 < len(spec):
            current += spec[i : i + 2]
            i += 2
            continue
        if c == ",":
            out.append(current)
            current = ""
        else:
            current += c
        i += 1
    out.append(current)
    return out


def _matches(pattern: str, value: str) -> bool:
    prefix = pattern.endswith("*") and not pattern.endswith("\\*")
    body = pattern[:-1] if prefix else pattern
    literal, i = "", 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            literal += body[i + 1]
            i += 2
        else:
            literal += body[i]
            i += 1
    return value.startswith(literal) if prefix else value == literal


def key_matches(spec: str | None, key: str) -> bool:
    return spec is None or any(_matches(p, key) for p in _alternatives(spec))


def label_matches(spec: str | None, label: str | None) -> bool:
    if spec is None or spec == "*":
        return True
    for pattern in _alternatives(spec):
        if pattern in ("\0", ""):
            if label is None:
                return True
        elif label is not None and _matches(pattern, label):
            return True
    return False


class Store:
    """The data, and the server's behaviour switches."""

    def __init__(self, page_size: int = 100) -> None:
        self.items: dict[tuple[str, str | None], Item] = {}
        self.snapshots: dict[str, list[Item]] = {}
        self.page_size = page_size
        self.sequence = itertools.count(1)
        self.sn = 0
        self.failures: list[tuple[int, str | None]] = []  # (status, Retry-After) to answer next
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.sync_tokens_seen: list[str] = []
        self.bearer: str | None = None  # an accepted Entra token, if any
        self._listed: tuple[Any, list[Item]] | None = None

    def set(
        self,
        key: str,
        value: str | None,
        label: str | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Item:
        self.sn += 1
        item = Item(
            key, label, value, content_type, dict(tags or {}), f"etag-{next(self.sequence)}"
        )
        self.items[key, label] = item
        return item

    def delete(self, key: str, label: str | None = None) -> Item | None:
        self.sn += 1
        return self.items.pop((key, label), None)

    def snapshot(self, name: str, key_filter: str = "*", label: str | None = None) -> None:
        self.snapshots[name] = [
            i
            for i in self.sorted()
            if key_matches(key_filter, i.key) and label_matches(label or "\0", i.label)
        ]

    def sorted(self) -> list[Item]:
        return sorted(self.items.values(), key=lambda i: (i.key, i.label or ""))

    def matching(self, key: str | None, label: str | None, tags: list[str]) -> list[Item]:
        """The items a listing selects, in the service's order; kept until the next write,
        so that paging through a large store costs one filtering, not one per page."""
        wanted = (key, label, tuple(tags), self.sn, len(self.items))
        if self._listed is None or self._listed[0] != wanted:
            found = [
                i
                for i in self.sorted()
                if key_matches(key, i.key)
                and label_matches(label, i.label)
                and all(_tag_matches(t, i.tags) for t in tags)
            ]
            self._listed = (wanted, found)
        return self._listed[1]

    @property
    def sync_token(self) -> str:
        return f"loopback={base64.b64encode(str(self.sn).encode()).decode()};sn={self.sn}"

    def connection_string(self, server: TestServer) -> str:
        return f"Endpoint={endpoint(server)};Id={CREDENTIAL_ID};Secret={SECRET}"


def endpoint(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _signature_ok(request: web.Request, body: bytes) -> bool:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("HMAC-SHA256 "):
        return False
    fields = dict(part.split("=", 1) for part in auth[len("HMAC-SHA256 ") :].split("&"))
    if fields.get("Credential") != CREDENTIAL_ID:
        return False
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if request.headers.get("x-ms-content-sha256") != digest:
        return False
    # Against the raw request target: the aiohttp transport re-encodes the query before signing.
    signed = "\n".join(
        [
            request.method,
            request.raw_path,
            f"{request.headers.get('x-ms-date', '')};{request.headers.get('Host', '')};{digest}",
        ]
    )
    expected = hmac.new(base64.b64decode(SECRET), signed.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(expected).decode(), fields.get("Signature", ""))


def _page_etag(items: list[Item], after: int) -> str:
    text = json.dumps([after, *[i.etag for i in items]])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:24] + '"'


def app(store: Store) -> web.Application:
    @web.middleware
    async def checks(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        token = request.headers.get("Sync-Token")
        if token:
            store.sync_tokens_seen.append(token)
        auth = request.headers.get("Authorization", "")
        entra = store.bearer is not None and auth == f"Bearer {store.bearer}"
        if not entra and not _signature_ok(request, body):
            response: web.StreamResponse = web.json_response({"title": "Unauthorized"}, status=401)
        elif store.failures:
            status, wait = store.failures.pop(0)
            headers = {} if wait is None else {"Retry-After": wait}
            response = web.json_response({"title": "busy"}, status=status, headers=headers)
        else:
            response = await handler(request)
        if response.status < 400:
            response.headers["Sync-Token"] = store.sync_token
        store.requests.append((request.method, request.path, response.status))
        return response

    def query(request: web.Request) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(request.raw_path).query, keep_blank_values=True)

    async def list_kv(request: web.Request) -> web.StreamResponse:
        params = query(request)
        get = {k.lower(): v for k, v in params}
        tags = [v for k, v in params if k.lower() == "tags"]
        if "snapshot" in get:
            if get["snapshot"] not in store.snapshots:
                return web.json_response({"title": "Not found"}, status=404)
            found = list(store.snapshots[get["snapshot"]])
        else:
            found = store.matching(get.get("key"), get.get("label"), tags)
        after = int(get.get("after", "0") or 0)
        page = found[after : after + store.page_size]
        headers = {"ETag": _page_etag(page, after)}
        if after + store.page_size < len(found):
            rest = [(k, v) for k, v in params if k.lower() not in ("after", "api-version")]
            rest.append(("After", str(after + store.page_size)))
            link = "/kv?" + "&".join(f"{k}={_quote(v)}" for k, v in rest)
            headers["Link"] = f'<{link}>; rel="next"'
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        body: dict[str, Any] = {"items": [i.json() for i in page]}
        if "Link" in headers:
            body["@nextLink"] = headers["Link"][1 : headers["Link"].index(">")]
        return web.json_response(
            body, headers=headers, content_type="application/vnd.microsoft.appconfig.kvset+json"
        )

    def label_of(request: web.Request) -> str | None:
        label = dict(query(request)).get("label")
        return None if label in (None, "", "\0") else label

    async def get_kv(request: web.Request) -> web.StreamResponse:
        item = store.items.get((request.match_info["key"], label_of(request)))
        if item is None:
            return web.json_response({"title": "Not found"}, status=404)
        headers = {"ETag": f'"{item.etag}"'}
        if request.headers.get("If-None-Match") in (item.etag, f'"{item.etag}"'):
            return web.Response(status=304, headers=headers)
        return web.json_response(item.json(), headers=headers)

    async def put_kv(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        item = store.set(
            request.match_info["key"],
            body.get("value"),
            label_of(request),
            body.get("content_type"),
            body.get("tags") or {},
        )
        return web.json_response(item.json(), headers={"ETag": f'"{item.etag}"'})

    async def delete_kv(request: web.Request) -> web.StreamResponse:
        item = store.delete(request.match_info["key"], label_of(request))
        if item is None:
            return web.Response(status=204)
        return web.json_response(item.json())

    async def get_snapshot(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in store.snapshots:
            return web.json_response({"title": "Not found"}, status=404)
        return web.json_response(
            {
                "name": name,
                "status": "ready",
                "composition_type": "key",
                "filters": [{"key": "*"}],
                "items_count": len(store.snapshots[name]),
                "etag": f"snap-{name}",
            }
        )

    application = web.Application(middlewares=[checks])
    application.router.add_get("/kv", list_kv)
    application.router.add_get("/kv/{key:.+}", get_kv)
    application.router.add_put("/kv/{key:.+}", put_kv)
    application.router.add_delete("/kv/{key:.+}", delete_kv)
    application.router.add_get("/snapshots/{name}", get_snapshot)
    return application


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _tag_matches(spec: str, tags: dict[str, str]) -> bool:
    name, _, value = spec.partition("=")
    if value == "\0":
        return name in tags and tags[name] is None
    return tags.get(name) == value


@asynccontextmanager
async def azure_server(store: Store) -> AsyncIterator[TestServer]:
    """The store served on a free loopback port, closed on exit. No access log."""
    server = TestServer(app(store), host="127.0.0.1")
    await server.start_server(access_log=None)
    try:
        yield server
    finally:
        await server.close()
