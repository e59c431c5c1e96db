"""Flask: one live configuration per app, one snapshot per request, Flask's own keys mirrored.

```python
from flask import Flask

from aioconfig.integrations.flask import AioConfig, get_snapshot

app = Flask(__name__)
AioConfig(app, "settings.toml", refresh_interval=10)


@app.get("/")
def index() -> dict[str, object]:
    snapshot = get_snapshot()  # the same version for the whole request
    return {"version": snapshot.version, "db": snapshot["db.host"]}
```

``AioConfig(app, *sources, **options)`` (or ``AioConfig(None, ...)`` then ``init_app(app)``)
opens an :func:`aioconfig.sync.load` configuration, keeps it fresh on its own thread and stores
it in ``app.extensions["aioconfig"]``. No view calls ``refresh()``.

* **One snapshot per request.** :func:`get_snapshot` returns the snapshot pinned when the
  request began, so a request never mixes two versions; templates get it as ``aioconfig``.
* **Flask's keys.** Top-level keys written in upper case (``SECRET_KEY``, ``DEBUG``,
  ``MAX_CONTENT_LENGTH``, an extension's ``SQLALCHEMY_DATABASE_URI``, ...) are copied into
  ``app.config`` when the app is set up and on every change: Flask's own rule for
  ``app.config.from_mapping()``. A key that leaves the configuration gets back the value
  ``app.config`` had before. ``mirror=False`` turns this off; ``mirror=callable`` picks the
  keys (``mirror=lambda key: key.startswith("MAIL_")``).
* **Closing.** Flask has no app-shutdown hook (``teardown_appcontext`` runs after *every*
  request), so the configuration closes at interpreter exit, like every SyncConfig, or when
  you call ``AioConfig.close(app)``, which also takes it out of ``app.extensions``: a later
  ``init_app(app)`` opens a new one. Under gunicorn each worker closes its own at exit.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._extras import needs

with needs("flask", "flask", by=__name__):
    from flask import Flask, current_app, g

from .._events import ChangeEvent
from .._snapshot import Snapshot
from .._sync import SyncConfig
from .._sync import load as _sync_load
from ..sources._base import Source

__all__ = ("AioConfig", "get_config", "get_snapshot")

EXTENSION_KEY = "aioconfig"
#: The app's hooks and mirror, which outlive one configuration (Flask takes no new hooks once
#: the app has served a request, so a configuration opened after a close reuses them).
_HOOKS_KEY = "aioconfig.hooks"
_PINNED = "_aioconfig_snapshot"
_ABSENT = object()


def flask_key(key: str) -> bool:
    """The default mirroring rule: Flask's own, upper-case names only."""
    return key.isupper()


class AioConfig:
    """The Flask extension: ``AioConfig(app, *sources, **options)`` or ``init_app(app)``.

    ``sources`` and ``options`` are those of :func:`aioconfig.load`; ``on_change`` runs after
    the mirroring into ``app.config``, on the configuration's own thread.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *sources: Source | str | os.PathLike[str],
        mirror: bool | Callable[[str], bool] = True,
        **options: Any,
    ) -> None:
        if not sources:
            raise TypeError("AioConfig() needs at least one source (a file path or a Source)")
        self._sources = sources
        self._options = options
        self._rule: Callable[[str], bool] | None = (
            (flask_key if mirror is True else None) if isinstance(mirror, bool) else mirror
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> SyncConfig:
        """Open the configuration for ``app`` (blocking until the first good load)."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("aioconfig is already set up on this app")
        hooks = app.extensions.get(_HOOKS_KEY)
        if hooks is None:
            hooks = app.extensions[_HOOKS_KEY] = _Hooks(app)
        mirror = hooks.mirror
        options = dict(self._options)
        owner: list[SyncConfig] = []
        if self._rule is not None:
            options["on_change"] = _after_mirroring(mirror, owner, options.get("on_change"))
        config = _sync_load(*self._sources, **options)
        owner.append(config)
        app.extensions[EXTENSION_KEY] = config
        mirror.attach(config, self._rule)
        return config

    @staticmethod
    def close(app: Flask | None = None, timeout: float | None = 5.0) -> None:
        """Close the app's configuration now (it is closed at interpreter exit otherwise).

        It leaves ``app.extensions``, so ``init_app(app)`` may open another; ``app.config``
        keeps the values last mirrored. Idempotent: nothing to close is not an error.
        """
        target = current_app if app is None else app
        config: SyncConfig | None = target.extensions.pop(EXTENSION_KEY, None)
        hooks: _Hooks | None = target.extensions.get(_HOOKS_KEY)
        if hooks is not None:
            hooks.mirror.detach()
        if config is not None:
            config.close(timeout)


def get_config(app: Flask | None = None) -> SyncConfig:
    """The live configuration of ``app`` (default: the current app)."""
    target = current_app if app is None else app
    try:
        config: SyncConfig = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "aioconfig is not set up on this app: call AioConfig(app, ...)"
        ) from None
    return config


def get_snapshot() -> Snapshot:
    """The snapshot pinned for this request (pinned on first use outside a request)."""
    snapshot: Snapshot | None = g.get(_PINNED)
    if snapshot is None:
        snapshot = get_config().snapshot
        setattr(g, _PINNED, snapshot)
    return snapshot


def _template_context() -> dict[str, Any]:
    if EXTENSION_KEY not in current_app.extensions:
        return {}  # closed: the app serves on without it
    return {"aioconfig": get_snapshot()}


class _Hooks:
    """Registered on the app once; they serve whichever configuration is open now."""

    def __init__(self, app: Flask) -> None:
        self.mirror = _Mirror(app.config)
        app.before_request(self.pin)
        app.context_processor(_template_context)

    def pin(self) -> None:
        config: SyncConfig | None = current_app.extensions.get(EXTENSION_KEY)
        if config is None:
            return  # closed: get_snapshot() says aioconfig is not set up
        snapshot = config.snapshot
        if self.mirror.applied is not snapshot:
            self.mirror.sync()  # a change the callback has not mirrored yet, or a new process
        setattr(g, _PINNED, snapshot)


class _Mirror:
    """Copies the chosen keys of the current snapshot into ``app.config``.

    Runs on the configuration's thread (on each change) and in request threads (when a request
    finds a snapshot not mirrored yet); the lock makes each copy whole, always of the newest
    snapshot, so an older one never overwrites a newer one.
    """

    def __init__(self, target: dict[str, Any]) -> None:
        self._target = target
        self.rule: Callable[[str], bool] | None = None  # None: mirror nothing
        self._lock = threading.Lock()
        self._config: SyncConfig | None = None
        # What app.config had before a key was mirrored: kept across a close and a new
        # configuration, so a key leaving the new one still gets the app's own value back.
        self._saved: dict[str, Any] = {}
        self.applied: Snapshot | None = None

    def attach(self, config: SyncConfig, rule: Callable[[str], bool] | None) -> None:
        with self._lock:
            self._config, self.rule = config, rule
        self.sync()

    def detach(self) -> None:
        """Stop following the configuration being closed (``app.config`` keeps its values)."""
        with self._lock:
            self._config = None
            self.applied = None

    def sync(self, source: SyncConfig | None = None) -> None:
        """Mirror the current snapshot; ``source``: only if that configuration is attached (a
        closed one's last callback must not touch the app)."""
        with self._lock:
            config = self._config
            if config is None or (source is not None and source is not config):
                return  # before attach() (which mirrors), or after detach()
            snapshot = config.snapshot
            if snapshot is self.applied:
                return
            rule = self.rule
            wanted = {key: _plain(snapshot[key]) for key in snapshot if rule and rule(key)}
            for key in list(self._saved):
                if key not in wanted:
                    previous = self._saved.pop(key)
                    if previous is _ABSENT:
                        self._target.pop(key, None)
                    else:
                        self._target[key] = previous
            for key, value in wanted.items():
                if key not in self._saved:
                    self._saved[key] = self._target.get(key, _ABSENT)
                self._target[key] = value
            self.applied = snapshot


def _after_mirroring(
    mirror: _Mirror, owner: list[SyncConfig], callback: Callable[[ChangeEvent], Any] | None
) -> Callable[[ChangeEvent], Any]:
    async def on_change(event: ChangeEvent) -> None:
        if owner:  # else a change before load() returned: attach() mirrors it
            mirror.sync(owner[0])
        if callback is not None:
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                await outcome

    return on_change


def _plain(value: Any) -> Any:
    """A snapshot's read-only value as the plain dicts and lists Flask code expects."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
